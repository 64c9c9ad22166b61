"""`nsv data KIND OUT`: generate training and evaluation data."""

from __future__ import annotations

from pathlib import Path

from engine.assets import ASSETS
from engine.errors import NsvError
from nsv.common import parse_size
from nsv.options import add_choice, command_parser

# The options of each kind (flag: default, help), one group each in --help; a flag's type is its
# default's type. A type instead of a default: each kind has its own (KIND_DEFAULTS).
KIND_OPTIONS: dict[str, dict[str, tuple[object, str]]] = {
    "synthetic / capture / phone": {
        "scene": ("demo", "synthetic: 'demo' (Armadillo + Bunny) or 'random'"),
        "meshes": (str(ASSETS.parent.parent / "shared" / "data" / "meshes"),
                   "synthetic: folder with armadillo.obj and bunny.obj"),
        "views": (int, "cameras (default: synthetic 60, capture 24, phone 60)"),
        "points": (240_000, "synthetic: points sampled on the surfaces"),
        "size": (str, "image size WxH (default: synthetic 384x288, capture 320x240, phone "
                 "480x480; denoise: its width, default 384)"),
        "noise": (0.0, "synthetic: point position noise (world units)"),
        "seed": (0, "random seed (every kind)"),
        "vignetting": (0.0, "phone: light lost at the frame's corners (0.3: 30%%)"),
        "local-tone": (0.0, "phone: strength of a local tone mapping that holds bright regions "
                       "down and lifts dark ones, as phones do (e.g. 0.3)"),
    },
    "denoise": {
        "sequences": (16, "number of sequences"),
        "frames": (8, "frames per sequence"),
        "samples": (4, "independent 1-spp samples stored per frame"),
        "ref-spp": (256, "reference samples"),
        "kinds": ("cornell", "comma-separated scene kinds cycled through (cornell, studio; "
                  "open-room is the held-out kind)"),
        "extra-spp": ("", "comma-separated sample counts also rendered per frame (e.g. "
                      "64,256,1024) to judge the denoiser at high spp"),
    },
    "objects / voxels": {
        "n": (8000, "objects: number of images"),
        "res": (64, "image size in pixels"),
        "categories": ("chair,stool,bench,table,sofa,lamp",
                       "objects: comma-separated furniture categories"),
        "plain": (0.4, "objects: fraction drawn in one plain colour (shape is all there is to see)"),
        "shapes": (800, "voxels: number of shapes"),
        "per-shape": (4, "voxels: views per shape"),
    },
}  # fmt: skip
# Counts a dataset cannot be made with fewer of (a capture needs two photos to triangulate).
AT_LEAST = {"views": 2, "points": 1, "sequences": 1, "frames": 1, "samples": 1, "ref-spp": 1,
            "n": 1, "res": 8, "shapes": 1, "per-shape": 1}  # fmt: skip
KIND_DEFAULTS = {  # kind -> the values of the options whose default depends on the kind
    "synthetic": {"views": 60, "size": "384x288"},
    "capture": {"views": 24, "size": "320x240"},
    "phone": {"views": 60, "size": "480x480"},
    "denoise": {"size": "384"},
}


def cmd_data(argv: list[str]) -> int:
    """Generate datasets. `synthetic`: a mesh scene with procedural materials, rendered
    headlessly from many cameras, written as a COLMAP folder with photos."""
    p = command_parser(cmd_data)
    add_choice(p, "kind", {
        "synthetic": "NPBG scenes",
        "denoise": "path-traced sequences for the denoiser",
        "capture": "a textured scene photographed from a ring of known cameras, written as "
                   "photos/, video.mp4 and nerf/transforms.json (+ truth.json) to try `nsv import` on",
        "phone": "a phone-like capture of objects on a table in a room (auto-exposure, white "
                 "balance, hand-shake blur, noise, JPEG, lens distortion) with transforms.json, "
                 "to judge `nsv import` + `nsv fit` on",
        "objects": "procedural chairs from random poses for `nsv train-hologan`",
        "voxels": "voxelized shapes with Phong/toon/contour renders for `nsv train-rendernet`",
    })  # fmt: skip
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--mesh",
        action="append",
        help="denoise: a mesh file (OBJ/PLY, +Y up) placed in 2 of 3 scenes; repeatable",
    )
    for group, options in KIND_OPTIONS.items():
        g = p.add_argument_group(f"{group} options")
        for name, (default, text) in options.items():
            if isinstance(default, type):
                g.add_argument("--" + name, type=default, help=text)
                continue
            shown = f" (default {default})" if default != "" else ""
            g.add_argument("--" + name, type=type(default), default=default, help=text + shown)
    a = p.parse_args(argv)
    for name, value in KIND_DEFAULTS.get(a.kind, {}).items():
        if getattr(a, name) is None:
            setattr(a, name, value)
    for name, least in AT_LEAST.items():
        value = getattr(a, name.replace("-", "_"))
        if value is not None and value < least:
            raise NsvError(f"--{name} {value}: expected {least} or more")

    if a.kind == "voxels":
        from engine.latent.rendernet import write_rendernet_dataset

        info = write_rendernet_dataset(a.out, a.shapes, a.per_shape, a.res, seed=a.seed)
        print(
            f"wrote {a.out}/rendernet.safetensors: {info['shapes']} shapes, {info['views']} views"
        )
        return 0
    if a.kind == "objects":
        from engine.latent.objects import CATEGORIES, write_object_dataset

        cats = tuple(c.strip() for c in a.categories.split(",") if c.strip())
        unknown = [c for c in cats if c not in CATEGORIES]
        if unknown or not cats:
            raise NsvError(f"--categories: unknown {', '.join(unknown) or '(none given)'}; "
                           f"choose from {', '.join(CATEGORIES)}")  # fmt: skip
        if not 0 <= a.plain <= 1:
            raise NsvError("--plain is a fraction between 0 and 1")
        info = write_object_dataset(a.out, a.n, a.res, a.seed, categories=cats, plain=a.plain)
        print(f"wrote {a.out}/objects.safetensors: {info['images']} objects ({', '.join(cats)}) "
              f"at {a.res}x{a.res} (preview.png shows the first 64)")  # fmt: skip
        return 0
    if a.kind == "phone":
        from engine.synthetic.phone import PhoneLook, write_phone_capture

        w, h = parse_size(a.size)
        if not (0 <= a.vignetting < 1 and 0 <= a.local_tone <= 1):
            raise NsvError("--vignetting must be from 0 to below 1, --local-tone from 0 to 1")
        look = PhoneLook(vignetting=a.vignetting, local_tone=a.local_tone)
        write_phone_capture(a.out, views=a.views, width=w, height=h, seed=a.seed, look=look)
        print(f"wrote {a.out}: images/ ({a.views} photos {w}x{h}), transforms.json, truth.json, "
              f"look.json (each photo's exposure and white balance); try: nsv import {a.out} SCENE")  # fmt: skip
        return 0
    if a.kind == "capture":
        from engine.synthetic.capture import write_capture

        w, h = parse_size(a.size)
        info = write_capture(a.out, views=a.views, width=w, height=h, seed=a.seed)
        print(
            f"wrote {a.out}: photos/ ({info['views']} views {w}x{h}), video.mp4 "
            f"({info['video_frames']} frames), nerf/transforms.json, truth.json"
        )
        return 0
    if a.kind == "denoise":
        from engine.denoise.data import write_dataset

        w, _ = parse_size(a.size if "x" in a.size else f"{a.size}x{a.size}")
        for m in a.mesh or []:
            if not Path(m).is_file():
                raise NsvError(f"{m}: no such mesh file")
        try:
            extra = tuple(int(x) for x in a.extra_spp.split(",") if x.strip())
        except ValueError:
            raise NsvError(f"--extra-spp {a.extra_spp!r}: expected numbers like 64,256") from None
        paths = write_dataset(
            a.out,
            a.sequences,
            a.frames,
            w,
            a.samples,
            a.ref_spp,
            a.seed,
            meshes=a.mesh,
            kinds=tuple(k.strip() for k in a.kinds.split(",") if k.strip()),
            extra_spp=extra,
        )
        print(f"wrote {len(paths)} sequences to {a.out}")
        return 0
    from engine.synthetic.render import write_synthetic_scene
    from engine.synthetic.scenes import demo_objects, random_objects

    w, h = parse_size(a.size)
    if a.scene == "demo":
        if not (Path(a.meshes) / "armadillo.obj").is_file():
            raise NsvError(f"{a.meshes}: needs armadillo.obj and bunny.obj (pass --meshes)")
        objects = demo_objects(a.meshes)
    elif a.scene == "random":
        objects = random_objects(a.seed, a.meshes if Path(a.meshes).is_dir() else None)
    else:
        raise NsvError(f"--scene {a.scene!r}: expected 'demo' or 'random'")
    info = write_synthetic_scene(a.out, objects, a.views, a.points, w, h, a.seed, a.noise)
    print(f"wrote {a.out}: {info['views']} views {w}x{h}, {info['points']:,} points")
    return 0
