"""Frames from a video for structure from motion: sharp ones, spread evenly over the clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.capture.progress import Progress
from engine.errors import NsvError

VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg"}


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (blurred frames score low).
    rgb: (H, W, 3) uint8."""
    g = rgb[::2, ::2].astype(np.float32).mean(-1)  # half resolution is enough to rank frames
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def extract_frames(
    video: Path, out_dir: Path, progress: Progress, max_frames: int = 60, max_side: int = 1600
) -> list[str]:
    """Split the clip into ``max_frames`` equal time bins and keep the sharpest frame of each
    (spread + sharp). Frames are written as ``frame_0000.jpg`` ... Returns {name: index of the
    frame in the clip}."""
    import imageio.v3 as iio
    import imageio_ffmpeg

    try:
        total, _secs = imageio_ffmpeg.count_frames_and_secs(str(video))
        reader = imageio_ffmpeg.read_frames(str(video))
        meta = next(reader)
    except Exception as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise NsvError(
            f"{video}: cannot decode the video ({msg}); try re-encoding it as H.264 MP4 or "
            "import a folder of photos instead"
        ) from None
    w, h = meta["size"]
    if total <= 0:
        raise NsvError(f"{video}: the video has no frames")
    n_bins = max(1, min(max_frames, total))
    best: list[tuple[float, np.ndarray | None, int]] = [(-1.0, None, -1)] * n_bins
    out_dir.mkdir(parents=True, exist_ok=True)
    i = -1
    try:
        for i, raw in enumerate(reader):
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            b = min(n_bins - 1, i * n_bins // total)
            s = sharpness(frame)
            if s > best[b][0]:
                best[b] = (s, frame.copy(), i)
            if i % 10 == 0:
                progress.update("reading video frames", i, total)
    except NsvError:
        reader.close()
        raise
    except Exception as e:
        if i < 0:
            raise NsvError(f"{video}: cannot decode the video ({e})") from None
    finally:
        reader.close()
    names: dict[str, int] = {}
    scale = min(1.0, max_side / max(w, h))
    for k, (_, frame, index) in enumerate(best):
        if frame is None:
            continue
        if scale < 1.0:
            from PIL import Image

            size = (round(w * scale), round(h * scale))
            frame = np.asarray(Image.fromarray(frame).resize(size, Image.LANCZOS))
        name = f"frame_{k:04d}.jpg"
        iio.imwrite(out_dir / name, frame, quality=95)
        names[name] = index
    if len(names) < 3:
        raise NsvError(f"{video}: only {len(names)} frame(s) could be decoded; need at least 3")
    progress.found(f"video: {total} frames, kept {len(names)} sharp frames spread over the clip")
    return names
