"""`nsv import`: your own capture (photos, video, NeRF, COLMAP) to a scene folder."""

from __future__ import annotations

from engine.errors import NsvError
from nsv.common import add_config_args, cli_progress, config_from_args
from nsv.options import command_parser

IMPORT_OPTIONS = ["densify", "matcher", "max_frames", "dense_side", "num_depths", "max_points",
                  "refine_points", "coarse_fill", "coarse_levels", "camera_model"]  # fmt: skip


def cmd_import(argv: list[str]) -> int:
    """Make a scene folder you can open and fit from a folder of photos, a video, a NeRF capture
    (transforms.json) or a COLMAP folder: structure from motion (pycolmap), undistortion, and a
    dense point cloud."""
    from engine.capture.importer import DENSIFY_METHODS, ImportOptions

    d = ImportOptions()
    p = command_parser(cmd_import)
    p.add_argument("source", help="photo folder, video file, transforms.json folder or COLMAP")
    p.add_argument("out", help="output scene folder (must not exist, or pass --force)")
    add_config_args(p, ImportOptions, IMPORT_OPTIONS, {
        "densify": "planesweep: dense depth maps; triangulate: more features "
                   "triangulated against the poses; none: keep the sparse SfM points",
        "max_frames": "video: frames kept",
        "dense_side": "plane sweep: longest side of the depth maps in pixels",
        "max_points": "plane sweep: keep at most this many points (fitting time grows with "
                      "the count)",
        "num_depths": "plane sweep: depth planes",
        "refine_points": "plane sweep: move each point along its normal to where the photos "
                         "agree best (slanted patches)",
        "coarse_fill": "plane sweep: fill each depth map's untextured holes (smooth shading, "
                       "plain walls) from sweeps at lower resolutions",
        "coarse_levels": "plane sweep: how many halvings the coarse fill sweeps at (1: half "
                         "the resolution; 2: half, then a quarter)",
        "camera_model": "SfM camera model for photos (e.g. SIMPLE_RADIAL, OPENCV, PINHOLE)",
    }, flags={"dense_side": "--dense-size", "num_depths": "--depths"},
       choices={"densify": list(DENSIFY_METHODS), "matcher": ["auto", "exhaustive", "sequential"]})  # fmt: skip
    p.add_argument("--depth-range", type=float, nargs=2, metavar=("NEAR", "FAR"),
                   default=(d.depth_near, d.depth_far),
                   help="plane sweep: sweep from NEAR x the nearest to FAR x the farthest depth "
                   "of the sparse points in view (the background often has no sparse points)")  # fmt: skip
    p.add_argument("--reference", help="a scene (or truth .json) with the true cameras: report "
                   "the pose error of the result after a similarity alignment")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_config_args(p, ImportOptions, ["strict"], {
        "strict": "transforms.json: refuse a capture whose listed images are partly missing "
                  "(default: skip those frames and say how many)"})  # fmt: skip
    a = p.parse_args(argv)
    if not (0 < a.depth_range[0] <= 1 <= a.depth_range[1]):
        raise NsvError(f"--depth-range {a.depth_range[0]:g} {a.depth_range[1]:g}: NEAR must be in "
                       "(0, 1] and FAR at least 1 (factors on the sparse points' depths)")  # fmt: skip
    if not 1 <= a.coarse_levels <= 4:
        raise NsvError(f"--coarse-levels {a.coarse_levels}: expected 1 to 4")
    if a.max_points < 1 or a.num_depths < 2 or a.dense_side < 8:
        raise NsvError("--max-points must be at least 1, --depths at least 2 and --dense-size "
                       "at least 8")  # fmt: skip
    from engine.capture.importer import import_capture

    opts = config_from_args(ImportOptions, a, [*IMPORT_OPTIONS, "strict"],
                            depth_near=a.depth_range[0], depth_far=a.depth_range[1])  # fmt: skip
    with cli_progress() as progress:
        report = import_capture(a.source, a.out, opts, progress, force=a.force)
    st = report["stages"]
    print(f"wrote {a.out} in {st['total']:.1f} s; open it with `nsv {a.out}`, "
          f"fit it with `nsv fit {a.out}`")  # fmt: skip
    if a.reference:
        from engine.capture.align import compare_to_reference

        err = compare_to_reference(a.out, a.reference)
        print(
            f"poses vs {a.reference} ({err['cameras']} cameras, similarity-aligned): rotation "
            f"{err['rotation_deg_mean']:.3f} deg mean / {err['rotation_deg_max']:.3f} max; "
            f"position {err['position_mean']:.4f} mean / {err['position_max']:.4f} max "
            f"({100 * err['position_mean_rel']:.2f}% / {100 * err['position_max_rel']:.2f}% "
            "of the camera extent)"
        )
    return 0
