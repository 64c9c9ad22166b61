"""GLSL of the Gaussians mode (viewer/gl/gaussians.py): the projection of each Gaussian
(Kerbl et al. 2023's EWA splatting), the quad and point-sprite passes that draw them front to
back, and the resolve onto the background."""

from __future__ import annotations

TEX_W = 4096  # texels per row of the parameter textures
SPRITE_PAD = 64  # px of guard band around the image; larger Gaussians are drawn as quads
# Pass 1, once per Gaussian (transform feedback): project it. Pass 2, per quad corner: place
# the corner. Doing the projection once instead of at each of the four corners is what makes
# a software rasterizer keep up (the vertex work dominated).
PROJECT_VS = """
#version 330
uniform sampler2D params;  // RGBA32F, 3 texels per Gaussian
uniform mat4 view;         // world -> camera (OpenCV axes: x right, y down, z forward)
uniform vec2 focal;
uniform vec2 center;
uniform vec2 tan_lim;      // 1.3 tan(half field of view), x and y
uniform float near;
uniform sampler2D sh;      // RGBA32F: the spherical-harmonic coefficients, SH_TEXELS per Gaussian
uniform int sh_count;      // coefficients per channel: 1, 4, 9 or 16
uniform vec3 eye;          // the camera centre, world coordinates
in uint in_index;
out vec4 o_mean;           // pixel centre xy, quad half-size (0: culled), unused
out vec4 o_conic;          // inverse 2D covariance (xx, xy, yy), opacity
out vec3 o_color;

ivec2 texel(int i) { return ivec2(i % %TEX_W%, i / %TEX_W%); }

float coef[48];  // coefficient-major: coef[3 * k + channel]

vec3 c(int k) { return vec3(coef[3 * k], coef[3 * k + 1], coef[3 * k + 2]); }

vec3 sh_color(int i, vec3 pos) {
    int n = (3 * sh_count + 3) / 4;
    for (int t = 0; t < n; ++t) {
        vec4 v = texelFetch(sh, texel(n * i + t), 0);
        for (int j = 0; j < 4; ++j) if (4 * t + j < 48) coef[4 * t + j] = v[j];
    }
    vec3 col = 0.28209479177387814 * c(0);
    if (sh_count > 1) {
        vec3 d = normalize(pos - eye);
        float x = d.x, y = d.y, z = d.z;
        col += -0.4886025119029199 * y * c(1) + 0.4886025119029199 * z * c(2)
               - 0.4886025119029199 * x * c(3);
        if (sh_count > 4) {
            float xx = x * x, yy = y * y, zz = z * z;
            col += 1.0925484305920792 * x * y * c(4) - 1.0925484305920792 * y * z * c(5)
                   + 0.31539156525252005 * (2.0 * zz - xx - yy) * c(6)
                   - 1.0925484305920792 * x * z * c(7) + 0.5462742152960396 * (xx - yy) * c(8);
            if (sh_count > 9) {
                col += -0.5900435899266435 * y * (3.0 * xx - yy) * c(9)
                       + 2.890611442640554 * x * y * z * c(10)
                       - 0.4570457994644658 * y * (4.0 * zz - xx - yy) * c(11)
                       + 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * c(12)
                       - 0.4570457994644658 * x * (4.0 * zz - xx - yy) * c(13)
                       + 1.445305721320277 * z * (xx - yy) * c(14)
                       - 0.5900435899266435 * x * (xx - 3.0 * yy) * c(15);
            }
        }
    }
    return max(col + 0.5, vec3(0.0));
}

void main() {
    int i = int(in_index);
    vec4 p0 = texelFetch(params, texel(3 * i), 0);
    vec4 p1 = texelFetch(params, texel(3 * i + 1), 0);
    vec4 p2 = texelFetch(params, texel(3 * i + 2), 0);
    o_mean = vec4(0.0); o_conic = vec4(0.0); o_color = vec3(0.0);
    vec3 t = (view * vec4(p0.xyz, 1.0)).xyz;
    float opacity = p0.w;
    float k = 2.0 * log(255.0 * opacity);  // alpha >= 1/255 inside d^T S^-1 d <= k
    if (t.z <= near || k <= 0.0) return;
    mat3 Sigma = mat3(p1.x, p1.y, p1.z, p1.y, p1.w, p2.x, p1.z, p2.x, p2.y);
    float tx = clamp(t.x / t.z, -tan_lim.x, tan_lim.x) * t.z;
    float ty = clamp(t.y / t.z, -tan_lim.y, tan_lim.y) * t.z;
    mat3 J = mat3(focal.x / t.z, 0.0, 0.0,
                  0.0, focal.y / t.z, 0.0,
                  -focal.x * tx / (t.z * t.z), -focal.y * ty / (t.z * t.z), 0.0);
    mat3 T = J * mat3(view);
    mat3 cov = T * Sigma * transpose(T);
    float a = cov[0][0] + 0.3;
    float b = cov[0][1];
    float cc = cov[1][1] + 0.3;
    float det = a * cc - b * b;
    if (det <= 0.0) return;
    float mid = 0.5 * (a + cc);
    float lmax = mid + sqrt(max(0.0, mid * mid - det));
    vec2 mean = vec2(focal.x * t.x / t.z + center.x, focal.y * t.y / t.z + center.y);
    o_mean = vec4(mean, sqrt(k * lmax), 0.0);
    o_conic = vec4(vec3(cc, -b, a) / det, opacity);
    o_color = sh_color(i, p0.xyz);
}
""".replace("%TEX_W%", str(TEX_W))
# One pass instead of two where every Gaussian fits in a point sprite (the sort bounds their
# size on screen): the projection runs once per point, and a point is one vertex where a quad
# is four - on llvmpipe a full frame of 715k Gaussians in about half the time.
POINT_VS = (
    PROJECT_VS.replace("out vec4 o_mean;", "vec4 o_mean;")
    .replace("out vec4 o_conic;", "vec4 o_conic;")
    .replace("out vec3 o_color;", "vec3 o_color;")
    .replace(
        "void main() {\n    int i = int(in_index);", "void project() {\n    int i = int(in_index);"
    )
    + """
uniform vec2 size;  // the image, pixels
uniform float pad;  // the guard band around it, pixels: a point whose centre is off the
                    // target is clipped whole, so the target reaches past the image
flat out vec3 v_conic;
flat out vec4 v_color;
flat out vec2 v_mean;
void main() {
    project();
    v_conic = o_conic.xyz;
    v_color = vec4(o_color, o_conic.w);
    v_mean = o_mean.xy;
    gl_PointSize = 2.0 * o_mean.z + 1.0;  // covers every pixel centre within the half-size
    gl_Position = o_mean.z <= 0.0 ? vec4(0.0, 0.0, 2.0, 1.0)  // culled
        : vec4((o_mean.x + pad) / (size.x + 2.0 * pad) * 2.0 - 1.0,
               1.0 - (o_mean.y + pad) / (size.y + 2.0 * pad) * 2.0, 0.0, 1.0);
}
"""
)
# The fragment's share of one Gaussian, ``d`` pixels from its mean: alpha = min(0.99, opacity
# G) and below 1/255 nothing; premultiplied for the front-to-back blend.
SPLAT_FS = """
#version 330
flat in vec3 v_conic;
flat in vec4 v_color;
out vec4 f_color;
void splat(vec2 d) {
    float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
    if (power > 0.0) discard;
    float alpha = min(0.99, v_color.a * exp(power));
    if (alpha < 1.0 / 255.0) discard;
    f_color = vec4(v_color.rgb * alpha, alpha);
}
"""
POINT_FS = (
    SPLAT_FS
    + """
uniform vec2 size;
uniform float pad;
flat in vec2 v_mean;
// The pixel centre's offset from the mean (y down), as the quads have it exactly.
void main() { splat(vec2(gl_FragCoord.x - pad, size.y + pad - gl_FragCoord.y) - v_mean); }
"""
)
QUAD_VS = """
#version 330
uniform vec2 size;         // target size in pixels
in vec2 in_corner;
in vec4 in_mean;
in vec4 in_conic;
in vec3 in_color;
flat out vec3 v_conic;
flat out vec4 v_color;
out vec2 v_d;

void main() {
    v_conic = in_conic.xyz;
    v_color = vec4(in_color, in_conic.w);
    if (in_mean.z <= 0.0) {  // culled in pass 1
        gl_Position = vec4(0.0, 0.0, 2.0, 1.0);
        v_d = vec2(0.0);
        return;
    }
    vec2 d = in_corner * in_mean.z;
    vec2 pix = in_mean.xy + d;
    gl_Position = vec4(pix.x / size.x * 2.0 - 1.0, 1.0 - pix.y / size.y * 2.0, 0.0, 1.0);
    v_d = d;
}
"""
QUAD_FS = (
    SPLAT_FS
    + """
in vec2 v_d;
void main() { splat(v_d); }
"""
)
RESOLVE_VS = """
#version 330
in vec2 in_pos;
out vec2 v_uv;
void main() { v_uv = in_pos * 0.5 + 0.5; gl_Position = vec4(in_pos, 0.0, 1.0); }
"""
RESOLVE_FS = """
#version 330
uniform sampler2D accum;
uniform vec3 background;
uniform vec4 uv_map;  // the image inside the accumulation target's guard band: scale, offset
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec4 s = texture(accum, v_uv * uv_map.xy + uv_map.zw);
    f_color = vec4(clamp(s.rgb + (1.0 - s.a) * background, 0.0, 1.0), 1.0);
}
"""
