"""Structure from motion with pycolmap: features, matching, incremental mapping, undistortion.

Runs on the CPU (pycolmap's PyPI wheel); the GPU SIFT/matching paths are used by pycolmap itself
when a CUDA build is installed (``Device.auto``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio  # noqa: F401  (must be imported before pycolmap: see _pycolmap)
import numpy as np

from engine.capture.progress import ImportCancelled, Progress
from engine.errors import NsvError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
MIN_PHOTOS = 3


def _pycolmap():
    # pycolmap's bundled zlib breaks Pillow's PNG writer unless Pillow is loaded first.
    import PIL.PngImagePlugin  # noqa: F401
    import pycolmap

    pycolmap.logging.minloglevel = 3  # COLMAP's log would drown our progress and errors
    return pycolmap


def list_photos(folder: Path) -> list[str]:
    """Image file names in ``folder`` (not recursive), sorted."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


@dataclass
class SfmResult:
    """The largest reconstruction and what it says about the capture."""

    reconstruction: object  # pycolmap.Reconstruction
    registered: list[str]
    unregistered: list[str]
    num_points: int
    reprojection_error: float


def _image_sizes(folder: Path, names: list[str]) -> set[tuple[int, int]]:
    from PIL import Image

    sizes = set()
    for n in names:
        try:
            with Image.open(folder / n) as im:
                sizes.add(im.size)
        except Exception as e:
            raise NsvError(f"{folder / n}: cannot read image ({e})") from None
    return sizes


def _extract(db, images_dir, names, camera_mode, camera_model, max_image_size, max_features,
             progress: Progress, first_octave: int = -1) -> None:  # fmt: skip
    """SIFT features of ``names`` into the database ``db``; ``first_octave`` -1 (COLMAP's
    default) finds features in the photo upsampled 2x, 0 in the photo itself (3x faster)."""
    pycolmap = _pycolmap()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_image_size
    extraction.sift.max_num_features = max_features
    extraction.sift.first_octave = first_octave
    pycolmap.extract_features(
        db, images_dir, image_names=names, camera_mode=camera_mode, reader_options=reader,
        extraction_options=extraction, cancellation_token=progress.token,
    )  # fmt: skip


def _verification():
    """Two-view geometry options with RANSAC seeded: COLMAP seeds each pair's RANSAC at random
    by default (random_seed -1), so the same photos gave different poses from run to run (a
    video's worst camera 1.6-2.2 degrees off the truth)."""
    verification = _pycolmap().TwoViewGeometryOptions()
    verification.ransac.random_seed = 0
    return verification


def run_sfm(
    images_dir: Path,
    work_dir: Path,
    progress: Progress,
    matcher: str = "auto",
    camera_model: str = "SIMPLE_RADIAL",
    max_image_size: int = 2000,
    max_features: int = 8192,
) -> SfmResult:
    """Recover cameras and sparse points for the photos in ``images_dir``.

    matcher: 'exhaustive' (every pair; best for a few dozen photos), 'sequential' (neighbouring
    frames of a video, plus quadratic overlap) or 'auto' (exhaustive up to 60 photos).
    """
    pycolmap = _pycolmap()
    names = list_photos(images_dir)
    if len(names) < MIN_PHOTOS:
        raise NsvError(
            f"{images_dir}: found {len(names)} photo(s); structure from motion needs at least "
            f"{MIN_PHOTOS} overlapping photos (20-100 taken around the subject work best)"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    db = work_dir / "database.db"
    if db.exists():
        db.unlink()

    # One shared camera when all photos have the same size (a phone or a video), one per photo
    # otherwise (e.g. photos cropped differently).
    sizes = _image_sizes(images_dir, names)
    mode = pycolmap.CameraMode.SINGLE if len(sizes) == 1 else pycolmap.CameraMode.PER_IMAGE
    progress.update("extracting features", 0, 0, f"{len(names)} photos")
    _extract(db, images_dir, names, mode, camera_model, max_image_size, max_features, progress)
    progress.check()
    progress.found(f"features: {len(names)} photos, {len(sizes)} image size(s)")

    if matcher == "auto":
        matcher = "exhaustive" if len(names) <= 60 else "sequential"
    progress.update(f"matching ({matcher})", 0, 0)
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(
            db, verification_options=_verification(), cancellation_token=progress.token
        )
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = 12
        pairing.quadratic_overlap = True
        pycolmap.match_sequential(
            db, pairing_options=pairing, verification_options=_verification(),
            cancellation_token=progress.token,
        )  # fmt: skip
    else:
        raise NsvError(f"unknown matcher {matcher!r}; use exhaustive, sequential or auto")
    progress.check()

    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = 0
    registered = [0]

    def next_image() -> None:
        registered[0] += 1
        if not progress.cancelled:
            progress.update("mapping: registering photos", registered[0], len(names))

    progress.update("mapping: registering photos", 0, len(names))
    models_dir = work_dir / "sparse"
    if models_dir.exists():
        shutil.rmtree(models_dir)
    models_dir.mkdir(parents=True)
    recs = pycolmap.incremental_mapping(
        db,
        images_dir,
        models_dir,
        options=options,
        next_image_callback=next_image,
        cancellation_token=progress.token,
    )
    progress.check()
    if not recs:
        raise NsvError(
            f"{images_dir}: structure from motion could not register the photos (no two photos "
            "share enough matching features); try photos with more overlap (each spot seen from "
            "3+ photos, ~60-80% overlap between neighbours) and more texture"
        )
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    reg = sorted(rec.images[i].name for i in rec.reg_image_ids())
    unreg = sorted(set(names) - set(reg))
    if len(reg) < MIN_PHOTOS:
        raise NsvError(
            f"{images_dir}: structure from motion registered only {len(reg)} of {len(names)} "
            "photos; try photos with more overlap and texture"
        )
    err = float(rec.compute_mean_reprojection_error())
    line = (
        f"structure from motion: {len(reg)}/{len(names)} photos registered, "
        f"{rec.num_points3D()} points, mean reprojection error {err:.2f} px"
    )
    if unreg:
        line += f"; not registered: {', '.join(unreg[:5])}{' ...' if len(unreg) > 5 else ''}"
    progress.found(line)
    return SfmResult(rec, reg, unreg, int(rec.num_points3D()), err)


def undistort(result: SfmResult, images_dir: Path, work_dir: Path, out_dir: Path, progress) -> None:
    """Write pinhole images (``out_dir/images``) and model (``out_dir/sparse/0``) for the
    registered photos."""
    pycolmap = _pycolmap()
    model_dir = work_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    result.reconstruction.write(model_dir)
    progress.update("undistorting photos", 0, 0, f"{len(result.registered)} photos")
    und = work_dir / "undistorted"
    if und.exists():
        shutil.rmtree(und)
    pycolmap.undistort_images(
        und, model_dir, images_dir, output_type="COLMAP", cancellation_token=progress.token
    )
    progress.check()
    (out_dir / "sparse").mkdir(parents=True, exist_ok=True)
    shutil.move(str(und / "images"), str(out_dir / "images"))
    rec = pycolmap.Reconstruction(und / "sparse")
    (out_dir / "sparse" / "0").mkdir(parents=True, exist_ok=True)
    rec.write(out_dir / "sparse" / "0")


POSE_PAIRS_ABOVE = 60  # photos; up to this many every pair is matched
POSE_PAIRS_K = 24  # above: each photo is matched with this many neighbours


def pose_pairs(rec, k: int | None = None) -> list[tuple[str, str]]:
    """Image-name pairs of a reconstruction with known poses: each photo with the ``k`` others
    nearest in position (relative to the rig's extent) and viewing direction. 110 frames of a
    360-degree orbit: 1,425 pairs instead of every one of 5,995."""
    k = POSE_PAIRS_K if k is None else k
    ids = sorted(rec.images)
    names = [rec.images[i].name for i in ids]
    fwd = np.stack([rec.images[i].cam_from_world().rotation.matrix()[2] for i in ids])
    pos = np.stack([rec.images[i].projection_center() for i in ids])
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    score = dist / max(float(dist.max()), 1e-12) + (1.0 - fwd @ fwd.T)
    np.fill_diagonal(score, np.inf)
    pairs = set()
    for a in range(len(ids)):
        for b in np.argsort(score[a])[:k]:
            pairs.add((min(a, int(b)), max(a, int(b))))
    return [(names[a], names[b]) for a, b in sorted(pairs)]


def triangulate_known_poses(
    scene_dir: Path,
    work_dir: Path,
    progress: Progress,
    max_features: int = 8192,
    max_image_size: int = 2000,
    first_octave: int = -1,
) -> np.ndarray:
    """Re-extract features in the (pinhole) photos of ``scene_dir`` and triangulate them against
    its fixed cameras. Returns (N, 6) float64: xyz and rgb 0-255. ``first_octave`` as
    :func:`_extract`'s."""
    pycolmap = _pycolmap()
    rec = pycolmap.Reconstruction(scene_dir / "sparse" / "0")
    images_dir = scene_dir / "images"
    work_dir.mkdir(parents=True, exist_ok=True)
    db = work_dir / "triangulate.db"
    if db.exists():
        db.unlink()
    names = [rec.images[i].name for i in sorted(rec.images)]
    # Seed the database with the model's own cameras, rigs, frames and images (same ids), so
    # the extractor attaches features to them and the triangulator finds them consistent.
    database = pycolmap.Database.open(db)
    for cam in rec.cameras.values():
        database.write_camera(cam, use_camera_id=True)
    for rig in rec.rigs.values():
        database.write_rig(rig, use_rig_id=True)
    for frame in rec.frames.values():
        database.write_frame(frame, use_frame_id=True)
    for img in rec.images.values():
        database.write_image(img, use_image_id=True)
    database.close()
    progress.update("triangulating: extracting features", 0, 0, f"{len(names)} photos")
    # PINHOLE: must match the model's cameras or triangulation refuses.
    _extract(db, images_dir, names, pycolmap.CameraMode.PER_IMAGE, "PINHOLE", max_image_size,
             max_features, progress, first_octave)  # fmt: skip
    progress.update("triangulating: matching", 0, 0)
    if len(names) <= POSE_PAIRS_ABOVE:
        pycolmap.match_exhaustive(
            db, verification_options=_verification(), cancellation_token=progress.token
        )
    else:  # the poses are known: match each photo with the ones that see the same things
        pairs_file = work_dir / "pairs.txt"
        pairs_file.write_text("".join(f"{a} {b}\n" for a, b in pose_pairs(rec)))
        pycolmap.match_image_pairs(
            db, pairing_options=pycolmap.ImportedPairingOptions(match_list_path=str(pairs_file)),
            verification_options=_verification(), cancellation_token=progress.token,
        )  # fmt: skip
    progress.update("triangulating: points from the known poses", 0, 0)
    out = work_dir / "triangulated"
    out.mkdir(parents=True, exist_ok=True)
    try:
        tri = pycolmap.triangulate_points(
            rec, db, images_dir, out, cancellation_token=progress.token
        )
    except ImportCancelled:
        raise
    except Exception as e:
        raise NsvError(f"{scene_dir}: triangulation failed ({e})") from None
    progress.check()
    pts = tri.points3D
    xyz = np.array([p.xyz for p in pts.values()], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in pts.values()], dtype=np.float64).reshape(-1, 3)
    return np.concatenate([xyz, rgb], 1)
