"""``nsv``: open the viewer, or run a headless command.

User errors print one line, ``nsv: error: <file>: <problem>``, and exit with status 1.
"""

from __future__ import annotations

import importlib
import sys

# group -> (command, "module:function", summary); `nsv --help` lists them in this order.
COMMANDS: dict[str, list[tuple[str, str, str]]] = {
    "view": [
        ("view", "nsv.view:cmd_view", "open the viewer on a scene (default: the bundled demo)"),
    ],
    "render": [
        ("render", "nsv.render:cmd_render", "one image of a scene, in any render mode"),
        ("rendernet", "nsv.latent:cmd_rendernet", "a mesh shaded by RenderNet"),
        ("hologan", "nsv.latent:cmd_hologan", "one HoloGAN image for shape / texture seeds"),
        ("denoise", "nsv.denoise:cmd_denoise", "denoise your rendered EXR sequence (ours / OIDN)"),
        ("export", "nsv.npbg:cmd_export", "a fitted scene as a Gaussian splatting PLY"),
    ],
    "import": [
        ("import", "nsv.capture:cmd_import", "photos / video / NeRF / COLMAP -> scene folder"),
    ],
    "fit / train": [
        ("fit", "nsv.npbg:cmd_fit", "fit neural point descriptors + network to photos"),
        ("pretrain", "nsv.npbg:cmd_pretrain", "pretrain the rendering network across scenes"),
        ("distill", "nsv.npbg:cmd_distill", "a fast preview network for a fitted scene"),
        ("train-denoiser", "nsv.denoise:cmd_train_denoiser", "train the recurrent denoiser"),
        ("train-hologan", "nsv.latent:cmd_train_hologan", "train HoloGAN on object renders"),
        ("train-rendernet", "nsv.latent:cmd_train_rendernet", "train RenderNet on voxel shapes"),
    ],
    "data": [
        ("data", "nsv.data:cmd_data", "generate synthetic / denoise / capture / objects / voxels"),
        ("make-demo", "nsv.npbg:cmd_make_demo", "rebuild the bundled demo point cloud"),
    ],
    "eval / bench": [
        ("eval", "nsv.npbg:cmd_eval", "held-out PSNR / SSIM of a fitted scene vs splatting"),
        ("eval-latent", "nsv.latent:cmd_eval_latent", "HoloGAN / RenderNet metrics and figures"),
        ("bench", "nsv.bench:cmd_bench", "timings: raster, neural, denoise, latent"),
    ],
}
HANDLERS = {name: target for group in COMMANDS.values() for name, target, _ in group}


def usage() -> str:
    lines = [
        "usage: nsv [PATH] [--device DEV] [--latent [MODEL]]   open the viewer",
        "       nsv COMMAND [options]                          (nsv COMMAND --help)",
        "",
    ]
    for group, cmds in COMMANDS.items():
        lines.append(f"{group}:")
        lines += [f"  {name:<16} {summary}" for name, _, summary in cmds]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from engine.errors import NsvError

    if argv is None:  # the console script (tests call main(argv) in their own process)
        from engine.memory import keep_freed_memory

        keep_freed_memory()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        from nsv.view import _view_parser

        print("\nviewer options:\n" + _view_parser().format_help().split("\n\n", 1)[-1])
        return 0
    cmd = argv[0] if argv and argv[0] in HANDLERS else "view"
    if argv and argv[0] == cmd:
        argv = argv[1:]
    module, func = HANDLERS[cmd].split(":")
    try:
        return getattr(importlib.import_module(module), func)(argv)
    except NsvError as e:
        print(f"nsv: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nsv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
