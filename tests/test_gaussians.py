"""Gaussian splatting: file formats, damaged files, and the OpenGL renderer against an
independent implementation of the published forward model (numpy, one Gaussian at a time)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from engine.camera import Camera
from engine.errors import SceneError
from engine.open_path import load_scene
from tests.helpers import assert_one_line_error, nsv

SH_NAMES = {0: 0, 1: 9, 2: 24, 3: 45}


def write_3dgs_ply(path, means, log_scales, quats, logits, sh, dtype="float", extra=True,
                   fmt="binary_little_endian"):  # fmt: skip
    """The original implementation's layout: sh (N, K, 3) coefficient-major is written as
    f_dc_0..2 and channel-major f_rest."""
    n, k = sh.shape[0], sh.shape[1] - 1
    cols = {"x": means[:, 0], "y": means[:, 1], "z": means[:, 2]}
    if extra:
        cols.update(nx=np.zeros(n), ny=np.zeros(n), nz=np.zeros(n))
    for c in range(3):
        cols[f"f_dc_{c}"] = sh[:, 0, c]
    for c in range(3):
        for j in range(k):
            cols[f"f_rest_{c * k + j}"] = sh[:, 1 + j, c]
    cols["opacity"] = logits
    for i in range(3):
        cols[f"scale_{i}"] = log_scales[:, i]
    for i in range(4):
        cols[f"rot_{i}"] = quats[:, i]
    if extra:
        cols["semantic_id"] = np.arange(n)  # extra properties are ignored
    np_t = {"float": "<f4", "half": "<f2", "double": "<f8"}[dtype]
    header = f"ply\nformat {fmt} 1.0\nelement vertex {n}\n"
    header += "".join(f"property {dtype} {name}\n" for name in cols) + "end_header\n"
    data = np.stack([np.asarray(v, np.float64) for v in cols.values()], 1)
    if fmt == "ascii":
        body = "".join(" ".join(f"{v:.9g}" for v in row) + "\n" for row in data).encode()
    else:
        body = data.astype(np_t).tobytes()
    path.write_bytes(header.encode() + body)
    return path


def random_scene(rng, n=120, degree=3):
    means = rng.uniform(-1, 1, (n, 3)) * [1.0, 0.7, 0.6]
    log_scales = rng.uniform(np.log(0.01), np.log(0.15), (n, 3))  # anisotropic
    quats = rng.normal(size=(n, 4))
    logits = rng.normal(0.5, 1.5, n)
    sh = rng.normal(0, 0.4, (n, (degree + 1) ** 2, 3))
    sh[:, 0] = rng.normal(0, 1.0, (n, 3))
    return means, log_scales, quats, logits, sh


# --- the independent reference -------------------------------------------------------------------
def _sh_basis(d, degree):
    """Real SH basis (the 3DGS sign convention) for a unit direction d, as a list."""
    x, y, z = d
    b = [0.28209479177387814]
    if degree >= 1:
        b += [-0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x]
    if degree >= 2:
        b += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z,
              0.31539156525252005 * (2 * z * z - x * x - y * y), -1.0925484305920792 * x * z,
              0.5462742152960396 * (x * x - y * y)]  # fmt: skip
    if degree >= 3:
        b += [-0.5900435899266435 * y * (3 * x * x - y * y), 2.890611442640554 * x * y * z,
              -0.4570457994644658 * y * (4 * z * z - x * x - y * y),
              0.3731763325901154 * z * (2 * z * z - 3 * x * x - 3 * y * y),
              -0.4570457994644658 * x * (4 * z * z - x * x - y * y),
              1.445305721320277 * z * (x * x - y * y),
              -0.5900435899266435 * x * (x * x - 3 * y * y)]  # fmt: skip
    return np.array(b)


def reference_render(cam: Camera, means, log_scales, quats, logits, sh, background=(0, 0, 0)):
    """Straight from the paper and the original CUDA code's semantics, one Gaussian at a time:
    (H, W, 3) float64 in [0, 1] (unquantized)."""
    W, H = cam.width, cam.height
    degree = int(np.sqrt(sh.shape[1])) - 1
    Rw, tw = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    centre = -Rw.T @ tw
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    depth = [(Rw @ m + tw)[2] for m in means]
    C = np.zeros((H, W, 3))
    T = np.ones((H, W))
    lim_x, lim_y = 1.3 * 0.5 * W / cam.fx, 1.3 * 0.5 * H / cam.fy
    for g in np.argsort(depth, kind="stable"):
        t = Rw @ means[g] + tw
        if t[2] <= cam.near:
            continue  # behind the camera or before the near plane
        q = quats[g] / np.linalg.norm(quats[g])
        Rg = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()  # scipy: (x, y, z, w)
        S = np.diag(np.exp(log_scales[g]))
        Sigma = Rg @ S @ S.T @ Rg.T
        tx = np.clip(t[0] / t[2], -lim_x, lim_x) * t[2]
        ty = np.clip(t[1] / t[2], -lim_y, lim_y) * t[2]
        J = np.array([[cam.fx / t[2], 0, -cam.fx * tx / t[2] ** 2],
                      [0, cam.fy / t[2], -cam.fy * ty / t[2] ** 2]])  # fmt: skip
        cov2 = J @ Rw @ Sigma @ Rw.T @ J.T + 0.3 * np.eye(2)
        inv = np.linalg.inv(cov2)
        mu = np.array([cam.fx * t[0] / t[2] + cam.cx, cam.fy * t[1] / t[2] + cam.cy])
        dx, dy = jj - mu[0], ii - mu[1]
        power = -0.5 * (inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy)
        opacity = 1 / (1 + np.exp(-logits[g]))
        alpha = np.minimum(0.99, opacity * np.exp(power))
        alpha[(alpha < 1 / 255) | (power > 0) | (T < 1e-4)] = 0.0  # skipped; stopped
        d = means[g] - centre
        rgb = np.maximum(_sh_basis(d / np.linalg.norm(d), degree) @ sh[g] + 0.5, 0.0)
        C += (T * alpha)[..., None] * rgb
        T = T * (1 - alpha)
    return np.clip(C + T[..., None] * np.asarray(background), 0, 1)


def psnr(a, b):
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def _camera(eye, w=96, h=72):
    return Camera.look_at(np.array(eye, float), np.zeros(3), np.array([0, -1.0, 0]), w, h, 55.0)


@pytest.fixture(scope="module")
def gl_ctx():
    from engine.glcontext import create_headless_context

    try:
        return create_headless_context()
    except Exception as e:  # pragma: no cover - machines without EGL/GL
        pytest.skip(f"no headless OpenGL: {e}")


@pytest.mark.parametrize("degree", [0, 3])
def test_gl_render_matches_reference(tmp_path, rng, gl_ctx, degree):
    from viewer.gl.gaussians import GaussiansGL

    scene_arrays = random_scene(rng, degree=degree)
    means = scene_arrays[0]
    # Some Gaussians behind the camera and some just past the near plane.
    eye = np.array([0.3, -0.4, 2.6])
    means[:6] = eye + rng.normal(0, 0.05, (6, 3)) + np.array([0, 0, 0.3])  # behind
    means[6:10] = eye + np.array([0, 0, -0.12]) + rng.normal(0, 0.08, (4, 3))  # at the near plane
    path = write_3dgs_ply(tmp_path / "g.ply", *scene_arrays)
    scene = load_scene(path)
    assert scene.gaussians is not None and scene.gaussians.count == len(means)
    assert scene.gaussians.degree == degree
    drawer = GaussiansGL(gl_ctx)
    drawer.set_scene(scene)
    sprites = []
    for eye_i in (eye, [-2.0, -0.5, -1.5]):
        cam = _camera(eye_i)
        ref = reference_render(cam, *scene_arrays)
        img = drawer.render(cam) / 255.0
        sprites.append(drawer.drew_sprites)
        assert img.std() > 0.02  # not a blank frame
        assert psnr(img, ref) >= 40.0, psnr(img, ref)
        # Both ways of drawing: one point sprite per Gaussian where their size allows (with a
        # guard band for those centred off the image), else instanced quads.
        max_point, drawer._max_point = drawer._max_point, 0.0
        quads = drawer.render(cam) / 255.0
        drawer._max_point = max_point
        assert not drawer.drew_sprites and psnr(quads, ref) >= 40.0, psnr(quads, ref)
    assert any(sprites)
    drawer.release()


def test_background_and_formats_agree(tmp_path, rng, gl_ctx):
    """Half and double PLYs, ASCII, and a .splat of the same degree-0 Gaussians render alike;
    a white background shows where the splats do not cover."""
    from viewer.gl.gaussians import GaussiansGL

    arrays = random_scene(rng, n=60, degree=0)
    cam = _camera([0.0, -0.5, 2.5])
    images = {}
    for name, kw in {"float": {}, "half": {"dtype": "half"}, "double": {"dtype": "double"},
                     "ascii": {"fmt": "ascii"}}.items():  # fmt: skip
        scene = load_scene(write_3dgs_ply(tmp_path / f"{name}.ply", *arrays, **kw))
        d = GaussiansGL(gl_ctx)
        d.set_scene(scene)
        images[name] = d.render(cam) / 255.0
        d.background = (1.0, 1.0, 1.0)
        white = d.render(cam) / 255.0
        d.release()
    ref = reference_render(cam, *arrays)
    for name, img in images.items():
        assert psnr(img, ref) >= (35.0 if name == "half" else 40.0), name
    assert white.mean() > images["float"].mean() + 0.2
    # .splat: linear scales, RGBA bytes, quaternion bytes.
    means, log_scales, quats, logits, sh = arrays
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    rgba = np.concatenate(
        [0.5 + 0.28209479177387814 * sh[:, 0], 1 / (1 + np.exp(-logits[:, None]))], 1
    )
    rec = np.zeros(
        len(means), dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)]
    )
    rec["p"], rec["s"] = means, np.exp(log_scales)
    rec["c"] = np.clip(np.round(rgba * 255), 0, 255)
    rec["q"] = np.clip(np.round(q * 128 + 128), 0, 255)
    (tmp_path / "g.splat").write_bytes(rec.tobytes())
    scene = load_scene(tmp_path / "g.splat")
    d = GaussiansGL(gl_ctx)
    d.set_scene(scene)
    assert psnr(d.render(cam) / 255.0, ref) >= 25.0  # 8-bit colours and quaternions
    d.release()


def test_colors_and_invalid_gaussians(tmp_path, rng):
    means, log_scales, quats, logits, sh = random_scene(rng, n=50, degree=1)
    means[3] = np.nan
    quats[4] = 0.0
    scene = load_scene(write_3dgs_ply(tmp_path / "g.ply", means, log_scales, quats, logits, sh))
    g = scene.gaussians
    assert g.count == 48 and g.skipped == 2 and "2 invalid" in g.describe()
    keep = np.r_[0:3, 5:50]
    np.testing.assert_allclose(g.means, means[keep], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(g.quats, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        scene.colors, np.clip(0.5 + 0.28209479177387814 * sh[keep, 0], 0, 1), atol=2e-3
    )


@pytest.mark.parametrize(
    "damage, expect",
    [
        ("truncated", "truncated"),
        ("count", "truncated"),
        ("rest", "f_rest"),
        ("missing", "needs the vertex properties"),
        ("all_nan", "every Gaussian is invalid"),
        ("ascii_row", "vertex row 2"),
        ("splat_size", "multiple of 32"),
        ("splat_scale", "every Gaussian is invalid"),
    ],
)
def test_damaged_gaussian_files_say_one_line(tmp_path, rng, damage, expect):
    arrays = list(random_scene(rng, n=20, degree=1))
    path = tmp_path / "g.ply"
    if damage == "splat_size":
        path = tmp_path / "g.splat"
        path.write_bytes(b"\0" * 33)
    elif damage == "splat_scale":
        path = tmp_path / "g.splat"
        path.write_bytes(np.zeros((4, 8), "<f4").tobytes())  # zero scales
    elif damage == "ascii_row":
        write_3dgs_ply(path, *arrays, fmt="ascii")
        lines = path.read_bytes().split(b"\n")
        start = lines.index(b"end_header") + 1
        lines[start + 2] = lines[start + 2].replace(b" ", b" x", 1)
        path.write_bytes(b"\n".join(lines))
    elif damage == "all_nan":
        arrays[0][:] = np.nan
        write_3dgs_ply(path, *arrays)
    elif damage == "rest":
        arrays[4] = arrays[4][:, :3]  # 6 f_rest: no SH degree has that many
        write_3dgs_ply(path, *arrays)
    elif damage == "missing":
        write_3dgs_ply(path, *arrays)
        path.write_bytes(path.read_bytes().replace(b"property float rot_3\n", b"", 1))
    else:
        write_3dgs_ply(path, *arrays)
        raw = path.read_bytes()
        if damage == "truncated":
            path.write_bytes(raw[: len(raw) - 100])
        else:  # a huge declared count: nothing allocated for it
            path.write_bytes(raw.replace(b"element vertex 20", b"element vertex 2000000000", 1))
    with pytest.raises(SceneError, match=expect) as e:
        load_scene(path)
    assert "\n" not in str(e.value)
    assert_one_line_error(nsv("render", str(path), "--mode", "gaussians", "--out",
                              str(tmp_path / "x.png")), expect)  # fmt: skip


def test_nsv_render_gaussians(tmp_path, rng):
    import imageio.v3 as iio

    arrays = random_scene(rng, n=80, degree=2)
    path = write_3dgs_ply(tmp_path / "point_cloud.ply", *arrays)
    cam = _camera([0.2, -0.3, 2.4], 80, 60)
    import json

    (tmp_path / "c.camera.json").write_text(json.dumps(cam.to_dict()))
    res = nsv("render", str(path), "--mode", "gaussians", "--camera",
              str(tmp_path / "c.camera.json"), "--out", str(tmp_path / "x.png"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    img = iio.imread(tmp_path / "x.png") / 255.0
    assert psnr(img, reference_render(cam, *arrays)) >= 40.0
    # A plain cloud has no Gaussians: one line saying so.
    res = nsv("render", "demo", "--mode", "gaussians", "--out", str(tmp_path / "y.png"))
    assert_one_line_error(res, "Gaussian")


def _write_spz(path, means, log_scales, quats, logits, sh, version):
    """An .spz written from the published layout (independently of the reader): RDF -> RUB,
    24-bit positions with 12 fractional bits, 8-bit alphas, colours, log scales and SH, and
    rotations as x, y, z (v2) or the smallest three in 10 bits (v3)."""
    import gzip

    n, dim = len(means), sh.shape[1] - 1
    degree = {0: 0, 3: 1, 8: 2, 15: 3}[dim]
    flip = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], float)[:dim]
    p = means * [1, -1, -1]
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    q = q * [1, 1, -1, -1]  # (w, x, y, z) after the flip
    fixed = np.round(p * 4096).astype(np.int64) & 0xFFFFFF
    pos = np.stack([fixed & 255, (fixed >> 8) & 255, fixed >> 16], -1).astype(np.uint8)
    u8 = lambda x: np.clip(np.round(x), 0, 255).astype(np.uint8)  # noqa: E731
    alpha = u8(255 / (1 + np.exp(-logits)))
    color = u8(sh[:, 0] * (0.15 * 255) + 127.5)
    scale = u8((log_scales + 10) * 16)
    xyzw = q[:, [1, 2, 3, 0]]
    if version == 2:
        xyzw = xyzw * np.where(xyzw[:, 3:] < 0, -1, 1)
        rot = u8(xyzw[:, :3] * 127.5 + 127.5)
    else:
        rot = np.empty((n, 4), np.uint8)
        for i, v in enumerate(xyzw):
            big = int(np.argmax(np.abs(v)))
            neg = v[big] < 0
            comp = big
            for j in range(4):
                if j != big:
                    negbit = int((v[j] < 0) ^ neg)
                    mag = int(511 * abs(v[j]) / np.sqrt(0.5) + 0.5)
                    comp = (comp << 10) | (negbit << 9) | mag
            rot[i] = [(comp >> s) & 255 for s in (0, 8, 16, 24)]
    rest = u8((sh[:, 1:] * flip[:, None]) * 128 + 128).reshape(n, -1)
    header = np.array([(0x5053474E, version, n, degree, 12, 0, 0)],
                      dtype=[("m", "<u4"), ("v", "<u4"), ("n", "<u4"), ("d", "u1"),
                             ("f", "u1"), ("fl", "u1"), ("r", "u1")]).tobytes()  # fmt: skip
    body = b"".join(a.tobytes() for a in (pos, alpha, color, scale, rot, rest))
    path.write_bytes(gzip.compress(header + body))
    return path


@pytest.mark.parametrize("version", [2, 3])
def test_spz_renders_like_the_ply_it_was_made_from(tmp_path, rng, gl_ctx, version):
    from viewer.gl.gaussians import GaussiansGL

    means, log_scales, quats, logits, sh = random_scene(rng, n=80, degree=2)
    sh[:, 1:] = np.clip(sh[:, 1:], -0.9, 0.9)  # .spz keeps SH within [-1, 1]
    sh[:, 0] = np.clip(sh[:, 0], -3, 3)
    cam = _camera([0.2, -0.4, 2.5])
    ref = reference_render(cam, means, log_scales, quats, logits, sh)
    scene = load_scene(_write_spz(tmp_path / "g.spz", means, log_scales, quats, logits, sh,
                                  version))  # fmt: skip
    assert scene.gaussians.count == 80 and scene.gaussians.degree == 2
    np.testing.assert_allclose(scene.gaussians.means, means, atol=1e-3)
    d = GaussiansGL(gl_ctx)
    d.set_scene(scene)
    assert psnr(d.render(cam) / 255.0, ref) >= 28.0  # 8-bit colours, scales, rotations
    d.release()


def test_damaged_spz_files_say_one_line(tmp_path, rng):
    arrays = random_scene(rng, n=20, degree=1)
    good = _write_spz(tmp_path / "g.spz", *arrays, version=2).read_bytes()
    import gzip

    raw = gzip.decompress(good)
    cases = {
        "not gzip": (b"hello world, not a splat file", "gzip"),
        "magic": (gzip.compress(b"XXXX" + raw[4:]), "NGSP"),
        "truncated": (gzip.compress(raw[:-30]), "truncated"),
        "huge count": (
            gzip.compress(raw[:8] + np.uint32(4_000_000_000).tobytes() + raw[12:]),
            "more than",
        ),
        "version": (gzip.compress(raw[:4] + np.uint32(9).tobytes() + raw[8:]), "version 9"),
    }
    for name, (content, expect) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.spz"
        path.write_bytes(content)
        with pytest.raises(SceneError, match=expect) as e:
            load_scene(path)
        assert "\n" not in str(e.value) and str(e.value).startswith(str(path)), name
