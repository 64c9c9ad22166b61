"""``nsv import``: photos, a video, a NeRF capture or a COLMAP folder -> a scene folder.

The scene folder is a COLMAP scene the rest of the engine already opens::

    OUT/images/...            undistorted (pinhole) photos
    OUT/sparse/0/*.bin        cameras, poses and the sparse SfM points
    OUT/points.ply            the dense cloud (used instead of the sparse points when present)
    OUT/import.json           what each stage found and how long it took

Everything is built in a hidden ``.OUT.partial`` folder next to OUT and renamed into place at the
end, so a failed or cancelled import never leaves a half-written scene behind.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.capture.progress import ImportCancelled, Progress
from engine.capture.video import VIDEO_EXTS
from engine.errors import NsvError

DENSIFY_METHODS = ("planesweep", "triangulate", "none")


@dataclass
class ImportOptions:
    densify: str = "planesweep"  # planesweep | triangulate | none
    matcher: str = "auto"  # exhaustive | sequential | auto
    max_frames: int = 60  # video: frames kept
    dense_side: int = 400  # plane sweep: longest side of the depth maps, pixels
    num_depths: int = 96  # plane sweep: depth hypotheses per view
    # Plane sweep: at most this many points are kept (a random subset); fitting time grows
    # with the count. 1,000,000 rather than 600,000: stitch_toy's held-out textured pixels hit
    # by a point at 512 px go from 66% to 75%, its fit from 28.42 dB / SSIM 0.895 to 28.46 /
    # 0.897 at a step 1.07x as long; a viewer frame's rasterization is as fast (session 23).
    max_points: int = 1_000_000
    # Plane sweep: the depths swept per view reach this far beyond the sparse points' own
    # range (nearest x depth_near, farthest x depth_far): SfM points often cover only the
    # object, and the table or wall around it lies beyond them.
    depth_near: float = 0.6
    depth_far: float = 2.5
    # Plane sweep: move each kept point along its normal to where a slanted patch agrees best
    # between the photos (engine.capture.planesweep.refine_points). Off: closer to phone2's
    # true surfaces, but stitch_toy's fit does not gain from it (session 22).
    refine_points: bool = False
    # Plane sweep: fill each depth map's untextured holes from sweeps at 1/2 .. 1/2**coarse_levels
    # of its resolution (engine.capture.planesweep.sweep_depth_filled). Held-out, 512 px, against
    # off (session 28): phone13 25.13 vs 24.68 dB, phone12 23.97 vs 23.65, stitch_toy 28.98 vs
    # 28.91; its import 245 vs 201 s (import + fit 19.4 min).
    coarse_fill: bool = True
    coarse_levels: int = 2
    camera_model: str = "SIMPLE_RADIAL"  # SfM camera model for photos and video frames
    max_image_size: int = 2000  # SfM: photos are downscaled to this for features
    strict: bool = False  # transforms.json: refuse (instead of skip) frames whose image is gone


def source_kind(src: Path) -> str:
    """'video', 'nerf', 'colmap' or 'photos'; raises NsvError for anything else."""
    from engine.capture.sfm import list_photos
    from engine.scene.nerf import is_nerf_capture

    if not src.exists():
        raise NsvError(f"{src}: no such file or folder")
    if src.is_file():
        if src.suffix.lower() in VIDEO_EXTS:
            return "video"
        if is_nerf_capture(src):
            return "nerf"
        raise NsvError(
            f"{src}: cannot import this file; give a folder of photos, a video "
            f"({', '.join(sorted(VIDEO_EXTS))}), a transforms.json capture or a COLMAP folder"
        )
    if is_nerf_capture(src):
        return "nerf"
    if any((d / f"cameras{e}").is_file() for d in (src, src / "sparse" / "0", src / "sparse")
           for e in (".bin", ".txt")):  # fmt: skip
        return "colmap"
    if list_photos(src):
        return "photos"
    if (src / "images").is_dir() and list_photos(src / "images"):
        return "photos"
    raise NsvError(f"{src}: no photos (.jpg/.png/...) found in this folder")


def _staging(out: Path, force: bool) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise NsvError(f"{out}: already exists; choose another output folder or pass --force")
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def import_capture(
    src: str | Path, out: str | Path, options: ImportOptions | None = None,
    progress: Progress | None = None, force: bool = False,
) -> dict:  # fmt: skip
    """Run the whole pipeline; returns the report also written to ``OUT/import.json``."""
    from engine.capture import sfm

    opts = options or ImportOptions()
    progress = progress or Progress()
    from engine.scene.colmap import MODEL_IDS

    if opts.camera_model not in MODEL_IDS:
        raise NsvError(
            f"unknown camera model {opts.camera_model!r}; use one of {', '.join(MODEL_IDS)}"
        )
    if opts.densify not in DENSIFY_METHODS:
        raise NsvError(f"unknown densify method {opts.densify!r}; use {', '.join(DENSIFY_METHODS)}")
    src, out = Path(src).expanduser(), Path(out).expanduser()
    kind = source_kind(src)
    partial = _staging(out, force)
    work = partial / ".work"
    report: dict = {"source": str(src), "kind": kind, "options": asdict(opts), "stages": {}}
    t_all = time.perf_counter()
    try:
        t = time.perf_counter()
        if kind in ("photos", "video"):
            if kind == "video":
                from engine.capture.video import extract_frames

                images_dir = work / "frames"
                report["video_frames"] = extract_frames(src, images_dir, progress, opts.max_frames)
                report["stages"]["frames"] = time.perf_counter() - t
                t = time.perf_counter()
                matcher = "sequential" if opts.matcher == "auto" else opts.matcher
            else:
                images_dir = src if sfm.list_photos(src) else src / "images"
                matcher = opts.matcher
            result = sfm.run_sfm(
                images_dir, work, progress, matcher, opts.camera_model, opts.max_image_size
            )
            report["sfm"] = {
                "registered": len(result.registered),
                "photos": len(result.registered) + len(result.unregistered),
                "unregistered": result.unregistered,
                "points": result.num_points,
                "reprojection_error_px": result.reprojection_error,
            }
            report["stages"]["sfm"] = time.perf_counter() - t
            t = time.perf_counter()
            sfm.undistort(result, images_dir, work, partial, progress)
            report["stages"]["undistort"] = time.perf_counter() - t
        elif kind == "nerf":
            _import_nerf(src, partial, work, progress, opts.strict)
            report["stages"]["convert"] = time.perf_counter() - t
        else:
            _copy_colmap(src, partial, progress)
            report["stages"]["copy"] = time.perf_counter() - t

        t = time.perf_counter()
        report["dense"] = _densify(partial, work, opts, progress)
        report["stages"]["densify"] = time.perf_counter() - t
        report["stages"]["total"] = time.perf_counter() - t_all
        shutil.rmtree(work, ignore_errors=True)
        report["found"] = list(progress.log)
        (partial / "import.json").write_text(json.dumps(report, indent=2))
        # The result must open before it replaces anything.
        from engine.scene.colmap import load_colmap
        from engine.scene.nerf import write_transforms

        scene = load_colmap(partial)
        # The same cameras for NeRF tools (nerfstudio, instant-ngp, 3DGS trainers).
        ply = "points.ply" if (partial / "points.ply").is_file() else None
        write_transforms(partial / "transforms.json", scene.views, ply)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.rename(out)
        return report
    except InterruptedError:  # pycolmap's answer to a cancelled token
        shutil.rmtree(partial, ignore_errors=True)
        raise ImportCancelled("import cancelled") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------


def _copy_colmap(src: Path, partial: Path, progress: Progress) -> None:
    """An existing COLMAP scene: copy its model (binary) and photos, e.g. to densify it."""
    from engine.scene.colmap import find_images_dir, find_model_dir, read_model, write_model

    model_dir, _ = find_model_dir(src)
    model = read_model(src)
    images_dir = find_images_dir(src, model_dir)
    if images_dir is None:
        raise NsvError(f"{src}: the COLMAP scene has no images/ folder; densifying needs photos")
    progress.update("copying photos", 0, len(model.images))
    for i, im in enumerate(model.images.values()):
        dst = partial / "images" / im.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not (images_dir / im.name).is_file():
            raise NsvError(f"{images_dir / im.name}: photo listed in the model is missing")
        shutil.copy2(images_dir / im.name, dst)
        progress.update("copying photos", i + 1, len(model.images))
    write_model(
        partial / "sparse" / "0",
        list(model.cameras.values()),
        list(model.images.values()),
        model.xyz,
        model.rgb,
    )
    progress.found(f"COLMAP scene: {len(model.images)} photos, {len(model.xyz)} sparse points")


def _import_nerf(
    src: Path, partial: Path, work: Path, progress: Progress, strict: bool = False
) -> None:
    """Cameras from transforms.json into a pinhole COLMAP model; photos copied (RGBA composited
    on white, the NeRF convention) or undistorted by pycolmap when the capture has distortion."""
    from PIL import Image

    from engine.scene.colmap import ColmapCamera, image_from_camera, write_model
    from engine.scene.nerf import read_transforms

    cap = read_transforms(src, strict)
    if cap.skipped:
        progress.found(f"{len(cap.skipped)} images listed in the transforms file are missing: "
                       "skipped (--strict refuses)")  # fmt: skip
    cams, ims = [], []
    distorted = any(f.distortion for f in cap.frames)
    for i, f in enumerate(cap.frames):
        c = f.camera
        if distorted:
            d = f.distortion
            params = [c.fx, c.fy, c.cx, c.cy, d.get("k1", 0), d.get("k2", 0)]
            params += [d.get("p1", 0), d.get("p2", 0)]
            cams.append(ColmapCamera(i + 1, "OPENCV", c.width, c.height, np.array(params)))
        else:
            cams.append(ColmapCamera(i + 1, "PINHOLE", c.width, c.height,
                                     np.array([c.fx, c.fy, c.cx, c.cy])))  # fmt: skip
        name = Path(f.name).with_suffix(".png").as_posix() if not distorted else f.name
        ims.append(image_from_camera(i + 1, i + 1, name, c))
    if distorted:
        from engine.capture.sfm import _pycolmap

        pycolmap = _pycolmap()
        write_model(work / "model", cams, ims, np.zeros((0, 3)), np.zeros((0, 3), np.uint8))
        progress.update("undistorting photos", 0, 0, f"{len(ims)} photos")
        pycolmap.undistort_images(
            work / "und", work / "model", cap.root, output_type="COLMAP",
            cancellation_token=progress.token,
        )  # fmt: skip
        progress.check()
        shutil.move(str(work / "und" / "images"), str(partial / "images"))
        rec = pycolmap.Reconstruction(work / "und" / "sparse")
        (partial / "sparse" / "0").mkdir(parents=True)
        rec.write(partial / "sparse" / "0")
    else:
        for i, (f, im) in enumerate(zip(cap.frames, ims, strict=True)):
            progress.update("copying photos", i, len(ims))
            dst = partial / "images" / im.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(f.image_path) as img:
                if img.mode in ("RGBA", "LA", "PA"):
                    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(bg, img.convert("RGBA"))
                img.convert("RGB").save(dst)
        pts, rgb = np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
        if cap.ply_path is not None:
            from engine.scene.ply import load_ply_cloud

            cloud = load_ply_cloud(cap.ply_path)
            pts = cloud.points.astype(np.float64)
            rgb = (cloud.colors_or_default() * 255 + 0.5).astype(np.uint8)
        write_model(partial / "sparse" / "0", cams, ims, pts, rgb)
    progress.found(
        f"NeRF capture: {len(cap.frames)} frames from {', '.join(f.name for f in cap.files)}"
        + (", undistorted" if distorted else "")
        + (f", points from {cap.ply_path.name}" if cap.ply_path else "")
    )


def _densify(partial: Path, work: Path, opts: ImportOptions, progress: Progress) -> dict:
    from engine.capture.sfm import triangulate_known_poses
    from engine.scene.colmap import read_model, write_model
    from engine.scene.ply import save_ply_cloud

    model = read_model(partial)
    if len(model.xyz) < 8 or opts.densify == "triangulate":
        # Known poses without points (a NeRF capture): triangulate features against them.
        t = time.perf_counter()
        # The plane sweep only takes each photo's depth range from these points: features
        # at the photos' own scale find it (stitch_toy: extraction 3x faster); as the cloud
        # itself (--densify triangulate) they come from the 2x upsampled photos too.
        cloud = opts.densify == "triangulate"
        tri = triangulate_known_poses(
            partial, work, progress, max_features=16384 if cloud else 8192,
            first_octave=-1 if cloud else 0,
        )  # fmt: skip
        progress.found(f"triangulated {len(tri)} points from the known poses "
                       f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
        if len(tri) < 8:
            raise NsvError(
                f"{partial}: too few points could be triangulated ({len(tri)}); the photos may "
                "not overlap or may lack texture"
            )
        if opts.densify == "triangulate":
            save_ply_cloud(partial / "points.ply", tri[:, :3].astype(np.float32),
                           (tri[:, 3:] / 255).astype(np.float32))  # fmt: skip
            return {"method": "triangulate", "points": len(tri)}
        write_model(
            partial / "sparse" / "0", list(model.cameras.values()), list(model.images.values()),
            tri[:, :3], tri[:, 3:].astype(np.uint8),
        )  # fmt: skip
        model = read_model(partial)
    if opts.densify == "none":
        return {"method": "none", "points": len(model.xyz)}
    return _plane_sweep(partial, opts, progress, model.xyz)


def _plane_sweep(partial: Path, opts: ImportOptions, progress: Progress, sparse) -> dict:
    import torch

    from engine.capture.planesweep import SweepView, densify, depth_range, working_size
    from engine.device import pick_device
    from engine.images import read_image, resize_image
    from engine.scene.colmap import load_colmap
    from engine.scene.ply import save_ply_cloud

    device = pick_device()
    scene = load_colmap(partial, dense=False)
    views = []
    for i, v in enumerate(scene.views):
        progress.update("dense: loading photos", i, len(scene.views))
        img = read_image(v.image_path)
        cam = v.camera
        if img.shape[1:] != (cam.height, cam.width):
            cam = cam.resized(img.shape[2], img.shape[1])
        w, h = working_size(cam.width, cam.height, opts.dense_side)
        cam = cam.resized(w, h)
        near, far = depth_range(cam, np.asarray(sparse, dtype=np.float64))
        near, far = near * opts.depth_near, far * opts.depth_far
        views.append(SweepView(cam, resize_image(img, w, h).to(device), near, far))
    t = time.perf_counter()

    def report(stage: str, i: int, n: int) -> None:
        progress.update(f"dense: {stage}", i, n)

    with torch.no_grad():
        cloud = densify(views, num_depths=opts.num_depths, max_points=opts.max_points,
                        report=report, refine=opts.refine_points,
                        coarse_levels=opts.coarse_levels if opts.coarse_fill else 0)  # fmt: skip
    if len(cloud.points) < 8:
        raise NsvError(f"{partial}: dense matching found no consistent points")
    save_ply_cloud(partial / "points.ply", cloud.points, cloud.colors, cloud.normals)
    secs = time.perf_counter() - t
    progress.found(
        f"dense: {len(cloud.points):,} points from {len(views)} depth maps "
        f"({views[0].camera.width}x{views[0].camera.height}, {opts.num_depths} planes) "
        f"in {secs:.1f} s on {device}"
    )
    return {"method": "planesweep", "points": len(cloud.points), "seconds": secs,
            "device": str(device), "sparse_points": len(sparse)}  # fmt: skip


def nerf_points(path: Path, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points for a NeRF capture without a point cloud: triangulated from its known poses,
    cached (``nsv_points.ply`` in the capture, or under ~/.cache/nsv when it is read-only)."""
    import hashlib
    import tempfile

    from engine.scene.nerf import read_transforms
    from engine.scene.ply import load_ply_cloud, save_ply_cloud

    cap = read_transforms(path)
    cache = cap.root / "nsv_points.ply"
    key = hashlib.sha1(str(cap.root.resolve()).encode()).hexdigest()[:16]
    fallback = Path.home() / ".cache" / "nsv" / "points" / f"{key}.ply"
    for c in (cache, fallback):
        if c.is_file():
            cloud = load_ply_cloud(c)
            return cloud.points, cloud.colors_or_default()
    with tempfile.TemporaryDirectory(prefix="nsv-nerf-") as tmp:
        out = Path(tmp) / "scene"
        import_capture(cap.root, out, ImportOptions(densify="triangulate"), progress)
        cloud = load_ply_cloud(out / "points.ply")
    for c in (cache, fallback):
        try:
            c.parent.mkdir(parents=True, exist_ok=True)
            save_ply_cloud(c, cloud.points, cloud.colors_or_default(), None)
            break
        except OSError:
            continue
    return cloud.points, cloud.colors_or_default()


__all__ = ["ImportCancelled", "ImportOptions", "import_capture", "nerf_points", "source_kind"]
