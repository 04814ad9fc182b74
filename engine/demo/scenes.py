"""Procedurally painted points of interest for the demo catalog.

The demo must run with no downloaded pictures, yet the curator and the inpainting model both
need something that reads as a photograph: flat colour blocks give the model nothing to
blend a person into and look broken in the catalog. So each scene is built like a cheap
renderer would build it: a pinhole camera over a ground plane (so paving and waves shrink
towards a real horizon), one sun that lights faces and casts shadows consistently, value
noise for every material, then haze, vignetting and grain. Everything comes from one seeded
generator, so a (kind, size, seed) triple always gives the same picture.

The lower third of every scene is kept free ground, because that is where the studio
places the visitor's feet.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from engine.errors import InvalidInput


@dataclass(frozen=True)
class Scene:
    kind: str
    title: str
    description: str


SCENES: dict[str, Scene] = {
    "piazza": Scene("piazza", "Italian piazza",
                    "a sunny Italian piazza paved in stone, with an obelisk fountain, "
                    "ochre and terracotta palazzi with green shutters and arcades, "
                    "and a bell tower under a blue sky"),
    "seaside": Scene("seaside", "Seaside promenade",
                     "a Mediterranean beach promenade on a summer afternoon, with a wooden "
                     "boardwalk on golden sand, striped beach umbrellas, turquoise sea, "
                     "a lighthouse on a green headland and white clouds"),
    "monument": Scene("monument", "Greek temple",
                      "an ancient Doric temple of golden stone on a stepped base, with a "
                      "colonnade and pediment, cypresses and umbrella pines, a paved "
                      "forecourt and a clear blue sky"),
    "mountain": Scene("mountain", "Alpine meadow",
                      "an alpine meadow with wildflowers and a dirt path leading towards "
                      "snow-capped rocky peaks, a dark fir forest and a bright blue sky"),
}


def draw_scene(kind: str, size: tuple[int, int] = (768, 512), seed: int = 0) -> Image.Image:
    """Paint scene `kind` at `size` (width, height); same arguments, same pixels."""
    if kind not in SCENES:
        raise InvalidInput("kind", kind, tuple(SCENES))
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidInput("size", size, reason="expected (width, height)") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise InvalidInput("size", size, reason="each side must be between 16 and 4096 pixels")
    # Supersampling is the anti-aliasing for polygons, mortar lines and textures; large
    # pictures already have enough pixels, and the cost grows with the square, so the
    # working canvas is capped at about a megapixel.
    ss = min(2.0, max(1.0, math.sqrt(1.0e6 / (w * h))))
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(kind.encode())])
    canvas = _Canvas(int(round(w * ss)), int(round(h * ss)), rng)
    _PAINTERS[kind](canvas)
    return canvas.finish(w, h)


# --------------------------------------------------------------------------------------
# Rendering toolkit
# --------------------------------------------------------------------------------------

def _tile_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Periodic value noise, so perspective sampling with wrap-around shows no seams."""
    g = rng.random((cells, cells), dtype=np.float32)
    big = np.tile(g, (3, 3))
    up = cv2.resize(big, (3 * n, 3 * n), interpolation=cv2.INTER_CUBIC)
    return up[n:2 * n, n:2 * n]


def _tile_fbm(rng: np.random.Generator, n: int = 256, cells: int = 4, octaves: int = 5,
              gain: float = 0.5) -> np.ndarray:
    out = np.zeros((n, n), np.float32)
    amp, total = 1.0, 0.0
    for i in range(octaves):
        c = cells * 2 ** i
        if c > n // 2:
            break
        out += amp * _tile_noise(rng, n, c)
        total += amp
        amp *= gain
    out /= total
    return _normalize(out)


def _normalize(a: np.ndarray) -> np.ndarray:
    """Stretch to roughly 0..1 (mean ± 2.2 sigma): cheap, and stable across sizes."""
    m, sd = float(a.mean()), float(a.std())
    return np.clip((a - m) / max(4.4 * sd, 1e-6) + 0.5, 0, 1).astype(np.float32)


def _screen_noise(rng: np.random.Generator, h: int, w: int, scale: float, octaves: int = 4,
                  gain: float = 0.5, aspect: float = 1.0) -> np.ndarray:
    """Noise in image space; `aspect` > 1 stretches features horizontally."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for i in range(octaves):
        s = scale / 2 ** i
        if s < 1.5 and i > 0:
            break
        s = max(s, 1.0)
        gh = max(2, int(h / s) + 3)
        gw = max(2, int(w / (s * aspect)) + 3)
        g = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= gain
    return _normalize(out / total)


def _sample(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Look a periodic texture up at texel coordinates (any range)."""
    n_v, n_u = tex.shape[:2]
    mu = np.mod(u, n_u).astype(np.float32)
    mv = np.mod(v, n_v).astype(np.float32)
    return cv2.remap(tex, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _smooth(e0: float, e1: float, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def _col(c) -> np.ndarray:
    return np.asarray(c, np.float32)


def _mix(a, b, t):
    t = np.asarray(t, np.float32)
    if t.ndim == 2 and max(np.ndim(a), np.ndim(b)) != 2:  # blend colours, not planes
        t = t[..., None]
    out = np.subtract(b, a, dtype=np.float32)
    # in place where the shapes allow: these blends run on whole pictures
    if out.shape == np.broadcast_shapes(out.shape, t.shape):
        out *= t
    else:
        out = out * t
    if out.shape == np.broadcast_shapes(out.shape, np.shape(a)):
        out += a
    else:
        out = out + a
    return out


def _norm3(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


class _M:
    """A mask cropped to its bounding box, so small objects cost small work."""

    __slots__ = ("a", "y", "x")

    def __init__(self, a: np.ndarray, y: int, x: int):
        self.a, self.y, self.x = a, y, x

    @property
    def sl(self):
        return slice(self.y, self.y + self.a.shape[0]), slice(self.x, self.x + self.a.shape[1])

    def __mul__(self, k):
        return _M(self.a * k, self.y, self.x)


class _Canvas:
    """A float RGB picture plus the pinhole camera every painter shares."""

    def __init__(self, w: int, h: int, rng: np.random.Generator):
        self.w, self.h, self.rng = w, h, rng
        self.img = np.zeros((h, w, 3), np.float32)
        self.f = 0.8 * max(w, h)
        self.cx = w / 2
        self.yh = 0.42 * h
        self.hc = 1.6
        self.sun = _norm3((-0.55, 0.65, -0.5))
        self.sun_col = _col((1.0, 0.93, 0.8))
        self.sky_col = _col((0.34, 0.39, 0.5))
        self._yy, self._xx = np.mgrid[0:h, 0:w].astype(np.float32)

    # geometry -------------------------------------------------------------------------
    def project(self, p) -> np.ndarray:
        p = np.asarray(p, np.float64)
        z = np.maximum(p[..., 2], 1e-3)
        x = self.cx + self.f * p[..., 0] / z
        y = self.yh - self.f * (p[..., 1] - self.hc) / z
        return np.stack([x, y], -1)

    def ground(self):
        """World x and depth of every pixel below the horizon, plus pixel footprints."""
        y0 = int(math.floor(self.yh)) + 1
        yy = self._yy[y0:] + 0.5
        xx = self._xx[y0:] + 0.5
        dy = np.maximum(yy - self.yh, 0.5)
        z = self.f * self.hc / dy
        x = (xx - self.cx) * self.hc / dy
        # metres covered by one pixel, for filtering patterns that would alias
        foot = np.abs(z / dy) + np.abs(x / dy)
        return y0, x, z, foot

    def y_of(self, z: float, height: float = 0.0) -> float:
        return self.yh - self.f * (height - self.hc) / z

    def grid(self, m: _M):
        ys, xs = m.sl
        return self._yy[ys, xs], self._xx[ys, xs]

    def noise(self, m: _M, scale: float, octaves: int = 3, aspect: float = 1.0) -> np.ndarray:
        h, w = m.a.shape
        return _screen_noise(self.rng, max(h, 1), max(w, 1), scale, octaves, aspect=aspect)[:h, :w]

    # painting -------------------------------------------------------------------------
    def _box(self, pts: np.ndarray, pad: int):
        x0 = int(max(0, math.floor(pts[:, 0].min()) - pad))
        x1 = int(min(self.w, math.ceil(pts[:, 0].max()) + pad + 1))
        y0 = int(max(0, math.floor(pts[:, 1].min()) - pad))
        y1 = int(min(self.h, math.ceil(pts[:, 1].max()) + pad + 1))
        return x0, y0, max(x1, x0), max(y1, y0)

    def mask(self, points, blur: float = 0.0) -> _M:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        pad = int(math.ceil(3 * blur)) + 2
        x0, y0, x1, y1 = self._box(pts, pad)
        if x1 <= x0 or y1 <= y0 or len(pts) < 3:
            return _M(np.zeros((0, 0), np.float32), 0, 0)
        a = np.zeros((y1 - y0, x1 - x0), np.uint8)
        loc = np.round((pts - (x0, y0)) * 8).astype(np.int32)
        loc = np.clip(loc, -2 ** 27, 2 ** 27)
        cv2.fillPoly(a, [loc], 255, lineType=cv2.LINE_AA, shift=3)
        a = a.astype(np.float32) / 255.0
        if blur > 0:
            a = cv2.GaussianBlur(a, (0, 0), blur)
        return _M(a, y0, x0)

    def ellipse_mask(self, cx, cy, rx, ry, blur: float = 0.0) -> _M:
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        return self.mask(np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], -1), blur)

    def _target(self, m, color, y0):
        if isinstance(m, _M):
            ys, xs = m.sl
            region = self.img[ys, xs]
            color = np.asarray(color, np.float32)
            if color.ndim == 3 and color.shape[:2] == (self.h, self.w):
                color = color[ys, xs]
            return region, m.a, color
        return self.img[y0:y0 + m.shape[0]], m, np.asarray(color, np.float32)

    def paint(self, m, color, y0: int = 0) -> None:
        region, a, color = self._target(m, color, y0)
        if a.size:
            a = a[..., None]
            region[:] = region * (1 - a) + color * a

    def shade(self, m, factor, y0: int = 0) -> None:
        """Darken (or tint) under `m`, the way a cast shadow takes away direct sun."""
        region, a, factor = self._target(m, factor, y0)
        if a.size:
            a = a[..., None]
            region[:] = region * (1 - a + a * factor)

    def light(self, normal) -> np.ndarray:
        """Colour multiplier for a surface facing `normal`: sky fill plus direct sun."""
        d = max(0.0, float(np.dot(_norm3(normal), self.sun)))
        return self.sky_col + self.sun_col * d * 0.85

    def warp(self, tex: np.ndarray, quad, alpha: np.ndarray | None = None) -> _M:
        """Map a flat facade texture onto a planar quad (TL, TR, BR, BL) of the picture."""
        th, tw = tex.shape[:2]
        dst = np.float32(quad)
        x0, y0, x1, y1 = self._box(dst.astype(np.float64), 2)
        if x1 <= x0 or y1 <= y0:
            return _M(np.zeros((0, 0), np.float32), 0, 0)
        src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
        m = cv2.getPerspectiveTransform(src, dst - np.float32([x0, y0]))
        size = (x1 - x0, y1 - y0)
        out = cv2.warpPerspective(tex, m, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        a = np.ones((th, tw), np.float32) if alpha is None else alpha.astype(np.float32)
        am = cv2.warpPerspective(a, m, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mk = _M(am, y0, x0)
        self.paint(mk, out)
        return mk

    # sky ------------------------------------------------------------------------------
    def sky(self, zenith, horizon, sun_xy=None, clouds: float = 0.5, cloud_alt: float = 900.0,
            cloud_scale: float = 2500.0, cloud_tint=(1.0, 1.0, 1.0)) -> None:
        h_sky = int(math.ceil(self.yh)) + 2
        yy = self._yy[:h_sky]
        xx = self._xx[:h_sky]
        t = np.clip(yy / self.yh, 0, 1) ** 1.8
        col = _mix(_col(zenith), _col(horizon), t)
        if sun_xy is not None:
            d = np.hypot(xx - sun_xy[0], yy - sun_xy[1]) / max(self.w, self.h)
            glow = np.exp(-d * 7.0) * 0.35 + np.exp(-d * 40.0) * 0.6 + (d < 0.018) * 1.0
            col = col + glow[..., None] * _col((1.0, 0.92, 0.75))
        if clouds > 0:
            # clouds live on a plane high above, so they shrink and flatten towards the horizon
            tex = _tile_fbm(self.rng, 256, 3, 6, 0.55)
            dy = np.maximum(self.yh - yy, 1.0)
            z = self.f * cloud_alt / dy
            x = (xx - self.cx) * cloud_alt / dy
            u = x / cloud_scale * 256
            v = z / cloud_scale * 256
            n = _sample(tex, u, v)
            n2 = _sample(tex, u - 4.0, v - 6.0)
            thr = 1.0 - 0.55 * clouds
            cover = _smooth(thr - 0.05, thr + 0.2, n)
            far = np.clip(z / (cloud_scale * 6), 0, 1)
            cover *= 1 - far ** 0.7 * 0.85
            lit = np.clip(0.78 + (n - n2) * 3.0 + (n - thr) * 0.3, 0.58, 1.05)
            base = _col(cloud_tint) * lit[..., None]
            base = _mix(base, _col((0.72, 0.76, 0.84)) * lit[..., None], np.clip((n - thr) * 1.5, 0, 0.5))
            base = _mix(base, col, 0.15 + 0.5 * far)
            col = _mix(col, base, cover)
        self.img[:h_sky] = col

    # finishing ------------------------------------------------------------------------
    def finish(self, w: int, h: int) -> Image.Image:
        img = self.img
        r = np.hypot((self._xx - self.cx) / self.w, (self._yy - self.h / 2) / self.h)
        img = img * (1.0 - 0.22 * r ** 2)[..., None]
        # a gentle film curve: lifts mids, rolls off highlights instead of clipping flat
        k = 1.3
        img = np.clip(img, 0, None)
        img = (1.0 - np.exp(-img * k)) / (1.0 - math.exp(-k))
        img += self.rng.normal(0, 0.012, img.shape[:2]).astype(np.float32)[..., None]
        if (img.shape[1], img.shape[0]) != (w, h):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(out, "RGB")


def _tile_lines(u: np.ndarray, du: np.ndarray, width: float) -> np.ndarray:
    """Coverage of joints at integer u, faded to their mean where a pixel spans whole tiles."""
    d = np.abs(u - np.round(u))
    cov = np.clip((width / 2 - d) / np.maximum(du, 1e-6) + 0.5, 0, 1)
    k = np.clip(du * 2.0, 0, 1)
    return cov * (1 - k) + width * k


def _hash2(i: np.ndarray, j: np.ndarray, table: np.ndarray) -> np.ndarray:
    n = table.shape[0]
    return table[np.mod(i, n).astype(np.intp), np.mod(j, n).astype(np.intp)]


def _paving(c: _Canvas, tile=(1.2, 0.8), colors=((0.72, 0.68, 0.62), (0.62, 0.56, 0.5)),
            joint=0.05, bond=True, bands: float = 0.0, band_col=(0.86, 0.84, 0.8),
            shade_var: float = 0.18):
    """Stone slabs on the ground plane, returning the rows painted and the world coords."""
    y0, x, z, foot = c.ground()
    rng = c.rng
    tu, tv = tile
    v = z / tv
    iv = np.floor(v)
    u = x / tu + (np.mod(iv, 2) * 0.5 if bond else 0)
    iu = np.floor(u)
    table = rng.random((97, 97), dtype=np.float32)
    table2 = rng.random((97, 97), dtype=np.float32)
    r = _hash2(iu, iv, table)
    r2 = _hash2(iu, iv, table2)
    ca, cb = _col(colors[0]), _col(colors[1])
    base = _mix(ca, cb, r)
    base *= (1 - shade_var / 2 + shade_var * r2)[..., None]
    tex = _tile_fbm(rng, 256, 8, 5)
    grain = _sample(tex, x * 90, z * 90)
    blot = _sample(tex, x * 9 + 31, z * 9 + 17)
    dist_fade = np.clip(foot * 3.0, 0, 1)
    base *= (0.88 + 0.24 * _mix(grain, np.full_like(grain, 0.5), dist_fade))[..., None]
    base *= (0.9 + 0.2 * blot)[..., None]
    # far slabs blend into their mean colour instead of shimmering
    k = np.clip(foot / tv * 1.5, 0, 1)[..., None]
    base = base * (1 - k) + (ca + cb) / 2 * k
    if bands > 0:
        # travertine strips dividing the floor into big squares, offset so none runs
        # straight down the middle of the picture
        bw = 0.45 / bands
        bl = np.maximum(_tile_lines(x / bands + 0.5, foot / bands, bw),
                        _tile_lines(z / bands, foot / bands, bw))
        base = _mix(base, _col(band_col) * (0.92 + 0.16 * grain)[..., None], bl)
    lu = _tile_lines(u, foot / tu, joint / tu)
    lv = _tile_lines(v, foot / tv, joint / tv)
    lines = np.maximum(lu, lv)
    base = base * (1 - 0.4 * lines)[..., None]
    return y0, x, z, foot, base


def _haze(c: _Canvas, y0: int, z: np.ndarray, color, dist: float, amount: float = 0.8):
    t = (1 - np.exp(-z / dist)) * amount
    region = c.img[y0:]
    region[:] = _mix(region, _col(color), t)


def _box_faces(center, size, yaw: float):
    """Side faces (as 4 world points) and outward normals of a box turned by `yaw`."""
    cx, cy, cz = center
    sx, sy, sz = size
    ca, sa = math.cos(yaw), math.sin(yaw)
    corners = []
    for dx, dz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        lx, lz = dx * sx / 2, dz * sz / 2
        corners.append((cx + lx * ca - lz * sa, cz + lx * sa + lz * ca))
    faces = []
    for i in range(4):
        (x1, z1), (x2, z2) = corners[i], corners[(i + 1) % 4]
        quad = [(x1, cy + sy, z1), (x2, cy + sy, z2), (x2, cy, z2), (x1, cy, z1)]
        nx, nz = (z2 - z1), -(x2 - x1)  # outward for counter-clockwise corners seen from above
        faces.append((np.array(quad), _norm3((nx, 0, nz))))
    top = [(x, cy + sy, z) for x, z in corners]
    return faces, np.array(top), corners


def _draw_prism(c: _Canvas, center, size, yaw, albedo, taper: float = 1.0,
                grain: bool = False, top: bool = True) -> list:
    """A lit box (optionally tapering, as for an obelisk); returns its footprint corners."""
    faces, topq, corners = _box_faces(center, size, yaw)
    cam = np.array([0.0, c.hc, 0.0])
    if taper != 1.0:
        mid = np.array([center[0], 0, center[2]])
        for q, _ in faces:
            for k in (0, 1):
                q[k][[0, 2]] = mid[[0, 2]] + (q[k][[0, 2]] - mid[[0, 2]]) * taper
        topq[:, [0, 2]] = mid[[0, 2]] + (topq[:, [0, 2]] - mid[[0, 2]]) * taper
    quads = [(q, n) for q, n in faces if np.dot(n, cam - q.mean(0)) > 0]
    if top and c.hc > center[1] + size[1]:
        quads.append((topq, np.array([0.0, 1.0, 0.0])))
    for q, n in quads:
        m = c.mask(c.project(q))
        if not m.a.size:
            continue
        col = _col(albedo) * c.light(n)
        if grain:
            scale = max(2.0, c.f / max(center[2], 1.0) * 0.25)
            col = col * (0.82 + 0.36 * c.noise(m, scale, 3))[..., None]
        c.paint(m, col)
    return corners


def _shadow_poly(c: _Canvas, base_pts, height: float) -> np.ndarray:
    """Ground shadow of a vertical prism: its footprint swept away from the sun."""
    off = -np.array([c.sun[0], c.sun[2]]) / c.sun[1] * height
    pts = []
    for x, z in base_pts:
        pts.append((x, z))
        pts.append((x + off[0], z + off[1]))
    pts = np.float32(pts)
    hull = cv2.convexHull(pts).reshape(-1, 2)
    world = np.stack([hull[:, 0], np.zeros(len(hull)), hull[:, 1]], -1)
    return c.project(world)


# --------------------------------------------------------------------------------------
# Facades
# --------------------------------------------------------------------------------------

_OCHRES = [(0.86, 0.62, 0.36), (0.84, 0.52, 0.34), (0.9, 0.74, 0.48), (0.78, 0.44, 0.3),
           (0.88, 0.8, 0.62), (0.8, 0.58, 0.42), (0.92, 0.68, 0.42)]
_SHUTTERS = [(0.22, 0.34, 0.24), (0.2, 0.3, 0.22), (0.42, 0.26, 0.16), (0.28, 0.36, 0.3)]


def _rect(a, x0, y0, x1, y1, col, blend: float = 1.0):
    h, w = a.shape[:2]
    x0, x1 = max(0, int(round(x0))), min(w, int(round(x1)))
    y0, y1 = max(0, int(round(y0))), min(h, int(round(y1)))
    if x1 > x0 and y1 > y0:
        a[y0:y1, x0:x1] = a[y0:y1, x0:x1] * (1 - blend) + np.asarray(col, np.float32) * blend


def _arch_mask(h, w, cx, spring, r, bottom):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = ((np.abs(xx - cx) <= r) & (yy >= spring) & (yy <= bottom)) | \
             (((xx - cx) ** 2 + (yy - spring) ** 2 <= r * r) & (yy < spring))
    return inside


def _facade(rng, width_m: float, height_m: float, ppm: float, base, shutter,
            arcade: bool, sun_side: int = -1) -> np.ndarray:
    """A palazzo front as a flat texture, before lighting; units are metres × `ppm`."""
    w, h = max(8, int(width_m * ppm)), max(8, int(height_m * ppm))
    P = lambda m: m * ppm  # noqa: E731
    base = _col(base)
    a = np.empty((h, w, 3), np.float32)
    a[:] = base
    # plaster: blotches, rain streaks, dirtier near the street
    blot = _screen_noise(rng, h, w, P(3.0), 4)
    streak = _screen_noise(rng, h, w, P(1.2), 3, aspect=0.15)
    a *= (0.86 + 0.2 * blot)[..., None]
    a *= (0.94 + 0.08 * streak)[..., None]
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    a *= (1 - 0.12 * _smooth(0.6, 1.0, yy))[..., None]
    # patches where plaster fell and the brick shows
    patch = _screen_noise(rng, h, w, P(1.5), 4)
    brick = _col((0.62, 0.34, 0.24)) * (0.85 + 0.3 * _screen_noise(rng, h, w, P(0.25), 2))[..., None]
    pm = _smooth(0.83, 0.87, patch)
    a = _mix(a, brick, pm)

    trim = np.minimum(base * 1.12 + 0.08, 1.0)
    shadow = base * 0.55
    ground_h = 4.6
    floor_h = 3.6
    top_band = 1.1
    n_floors = max(1, int((height_m - ground_h - top_band) / floor_h))
    bay = 3.4
    n_bays = max(1, int(width_m / bay))
    margin = (width_m - n_bays * bay) / 2
    # rusticated ground floor
    gy0 = h - P(ground_h)
    a[int(gy0):] *= 0.93
    for k in range(1, int(ground_h / 0.55)):
        yk = h - P(k * 0.55)
        _rect(a, 0, yk - P(0.04), w, yk, shadow, 0.5)
    # string courses and cornice, each with the shadow it casts below
    for k in range(n_floors + 1):
        yk = h - P(ground_h + k * floor_h)
        _rect(a, 0, yk - P(0.22), w, yk, trim)
        _rect(a, 0, yk, w, yk + P(0.12), shadow, 0.6)
    cy = h - P(ground_h + n_floors * floor_h)
    _rect(a, 0, 0, w, cy, a[int(min(h - 1, cy + 2)), 0] * 0 + trim * 0.97)
    _rect(a, 0, 0, w, P(0.35), (0.36, 0.2, 0.14))           # eave and roof tiles
    _rect(a, 0, P(0.35), w, P(0.6), shadow * 0.7, 0.85)     # deep shadow under the eave
    _rect(a, 0, cy - P(0.3), w, cy, trim * 0.9)
    dark = _col((0.08, 0.08, 0.09))
    for b in range(n_bays):
        bx = P(margin + (b + 0.5) * bay)
        for fl in range(n_floors):
            sill = h - P(ground_h + fl * floor_h + 0.9)
            top = sill - P(1.9)
            hw = P(0.55)
            # stone surround, glass, recess shadow
            _rect(a, bx - hw - P(0.16), top - P(0.16), bx + hw + P(0.16), sill + P(0.12), trim)
            glass = np.linspace(0.22, 0.12, max(1, int(sill - top)), dtype=np.float32)
            gy0_, gy1_ = int(top), int(top) + len(glass)
            if gy1_ <= h:
                gcol = _col((0.5, 0.58, 0.66))[None, None, :] * glass[:, None, None] * 2.2
                a[gy0_:gy1_, int(bx - hw):int(bx + hw)] = gcol
            _rect(a, bx - hw, top, bx + hw, top + P(0.25), dark, 0.55)
            _rect(a, bx - hw, top, bx - hw + P(0.15), sill, dark, 0.4)
            # mullions
            _rect(a, bx - P(0.03), top, bx + P(0.03), sill, (0.82, 0.8, 0.74))
            _rect(a, bx - hw, top + P(0.7), bx + hw, top + P(0.76), (0.82, 0.8, 0.74))
            _rect(a, bx - hw - P(0.22), sill, bx + hw + P(0.22), sill + P(0.14), trim * 1.02)
            _rect(a, bx - hw - P(0.22), sill + P(0.14), bx + hw + P(0.22), sill + P(0.3), shadow, 0.5)
            if fl == 0:  # piano nobile: a small pediment over each window
                _rect(a, bx - hw - P(0.3), top - P(0.5), bx + hw + P(0.3), top - P(0.28), trim)
                _rect(a, bx - hw - P(0.3), top - P(0.28), bx + hw + P(0.3), top - P(0.16), shadow, 0.55)
            scol = _col(shutter) * (0.9 + 0.2 * rng.random())
            state = rng.random()
            slat = (np.arange(max(1, int(sill - top))) % max(2, int(P(0.09))) == 0)
            if state < 0.25:  # closed shutters
                sx0, sx1 = int(bx - hw), int(bx + hw)
                _rect(a, sx0, top, sx1, sill, scol)
                if gy1_ <= h:
                    a[int(top):int(top) + len(slat), sx0:sx1][slat] *= 0.6
                _rect(a, bx - P(0.02), top, bx + P(0.02), sill, scol * 0.5)
            else:     # open, folded against the wall, casting a thin shadow
                for side in (-1, 1):
                    x0 = bx + side * (hw + P(0.18)) - (P(0.55) if side < 0 else 0)
                    _rect(a, x0, top, x0 + P(0.55), sill, scol)
                    if gy1_ <= h:
                        a[int(top):int(top) + len(slat), int(x0):int(x0 + P(0.55))][slat] *= 0.65
                    sx = x0 + P(0.55) if sun_side < 0 else x0 - P(0.12)
                    _rect(a, sx, top, sx + P(0.12), sill, shadow, 0.45)
        # ground floor: arcade or doors and shop windows
        gb = h - P(0.0)
        if arcade:
            r = P(bay / 2 - 0.35)
            spring = h - P(3.4)
            inside = _arch_mask(h, w, bx, spring, r, gb)
            depth = np.linspace(0.06, 0.2, h, dtype=np.float32)[:, None, None]
            interior = _col((0.55, 0.45, 0.36)) * depth * 1.6 + np.zeros_like(a)
            a = np.where(inside[..., None], interior, a)
            _rect(a, bx - r, spring - r - P(0.25), bx + r, spring - r, trim, 0.35)
        else:
            kind = (b + (1 if rng.random() < 0.5 else 0)) % 3
            if kind == 0:
                dw, dh = P(0.85), P(3.0)
                inside = _arch_mask(h, w, bx, h - dh + dw, dw, gb)
                wood = _col((0.3, 0.18, 0.1)) * (0.8 + 0.3 * _screen_noise(rng, h, w, P(0.4), 2, aspect=0.1))[..., None]
                a = np.where(inside[..., None], wood, a)
                _rect(a, bx - dw - P(0.2), h - dh - P(0.2), bx + dw + P(0.2), h - dh + P(0.05), trim, 0.6)
            else:
                sw, sh = P(1.2), P(2.6)
                _rect(a, bx - sw - P(0.15), h - sh - P(0.2), bx + sw + P(0.15), h, trim * 0.95)
                _rect(a, bx - sw, h - sh, bx + sw, h - P(0.5), (0.16, 0.2, 0.22))
                _rect(a, bx - sw, h - sh, bx + sw, h - sh + P(0.3), (0.05, 0.05, 0.05), 0.5)
                _rect(a, bx - sw - P(0.1), h - sh - P(0.85), bx + sw + P(0.1), h - sh - P(0.3),
                      _SHUTTERS[int(rng.integers(len(_SHUTTERS)))])
    a *= (0.96 + 0.08 * _screen_noise(rng, h, w, P(0.08), 2))[..., None]
    return a


# --------------------------------------------------------------------------------------
# Piazza
# --------------------------------------------------------------------------------------

def _piazza(c: _Canvas) -> None:
    rng = c.rng
    c.yh = 0.42 * c.h
    c.sun = _norm3((-0.62, 0.62, -0.28))
    c.sky((0.3, 0.55, 0.9), (0.78, 0.87, 0.97), clouds=0.3 + 0.2 * rng.random(),
          cloud_scale=3000.0)
    X, zb = 23.0 + 3 * rng.random(), 66.0 + 6 * rng.random()
    ppm = min(c.f / 40.0, 40.0)

    # bell tower behind the back row, the landmark that says "town centre"
    tx = (rng.random() - 0.5) * 2 * X * 0.6
    tz, tw, th = zb + 14, 6.5, 34.0 + 6 * rng.random()
    tower = _campanile(rng, tw, th, ppm * 0.6)
    quad = c.project(np.array([[tx - tw / 2, th, tz], [tx + tw / 2, th, tz],
                               [tx + tw / 2, 0, tz], [tx - tw / 2, 0, tz]]))
    roof_top = c.project(np.array([tx, th + 6.0, tz + tw / 2]))
    c.paint(c.mask([quad[0], quad[1], roof_top]), _col((0.55, 0.3, 0.2)) * c.light((0.3, 0.6, -1)))
    c.warp(tower * c.light((0, 0, -1)), quad)

    # floor first: facades are painted over its far edge
    y0, x, z, foot, floor = _paving(c, tile=(0.7, 0.5), colors=((0.68, 0.6, 0.5), (0.52, 0.46, 0.4)),
                                    bands=9.0, band_col=(0.84, 0.8, 0.72), shade_var=0.3, joint=0.06)
    # ambient occlusion where the floor meets the buildings
    ao = 1 - 0.35 * np.exp(-np.maximum(zb - z, 0) / 1.5) - 0.35 * np.exp(-np.maximum(X - np.abs(x), 0) / 1.5)
    c.img[y0:] = floor * c.light((0, 1, 0)) * (0.9 * ao)[..., None]

    # back row of palazzi
    back = np.zeros((c.h, c.w), np.float32)
    xs = -X
    while xs < X:
        bw = min(10 + rng.random() * 8, X - xs)
        if X - xs - bw < 5:
            bw = X - xs
        bh = 12 + rng.random() * 6
        tex = _facade(rng, bw, bh, ppm, _OCHRES[int(rng.integers(len(_OCHRES)))],
                      _SHUTTERS[int(rng.integers(len(_SHUTTERS)))], arcade=rng.random() < 0.4)
        quad = c.project(np.array([[xs, bh, zb], [xs + bw, bh, zb], [xs + bw, 0, zb], [xs, 0, zb]]))
        mk = c.warp(tex * c.light((0, 0, -1)), quad)
        if mk.a.size:
            back[mk.sl] = np.maximum(back[mk.sl], mk.a)
        xs += bw

    # the row on the left is in its own shadow; the one on the right faces the sun
    heights = []
    for side in (-1, 1):
        z_edge = c.f * X / c.cx * 0.8
        zs = zb
        while zs > z_edge:
            bw = min(11 + rng.random() * 9, zs - z_edge + 1)
            bh = 13 + rng.random() * 6
            if side < 0:
                heights.append(bh)
            tex = _facade(rng, bw, bh, ppm * 0.9, _OCHRES[int(rng.integers(len(_OCHRES)))],
                          _SHUTTERS[int(rng.integers(len(_SHUTTERS)))],
                          arcade=rng.random() < 0.5, sun_side=side)
            z_near, z_far = zs - bw, zs
            sx = side * X
            if side < 0:
                pts = [[sx, bh, z_near], [sx, bh, z_far], [sx, 0, z_far], [sx, 0, z_near]]
            else:
                pts = [[sx, bh, z_far], [sx, bh, z_near], [sx, 0, z_near], [sx, 0, z_far]]
            c.warp(tex * c.light((-side, 0, 0)), c.project(np.array(pts)))
            zs = z_near

    # shadow of the left row across the floor and onto the back row
    hl = float(np.mean(heights)) if heights else 15.0
    reach = hl * -c.sun[0] / c.sun[1]
    back_off = hl * -c.sun[2] / c.sun[1]
    shade = _col((0.5, 0.56, 0.72))
    floor_sh = c.project(np.array([[-X, 0, 0.5], [-X + reach, 0, 0.5 + back_off], [-X + reach, 0, zb],
                                   [-X, 0, zb]]))
    c.shade(c.mask(floor_sh, blur=c.w / 900), shade)
    wall_sh = c.mask(c.project(np.array([[-X, 0, zb], [-X + reach, 0, zb], [-X, hl, zb]])), blur=c.w / 900)
    if wall_sh.a.size:
        wall_sh.a *= back[wall_sh.sl]
        c.shade(wall_sh, shade * 0.95)

    _cafe(c, X, zb, rng)
    _fountain(c, (rng.random() - 0.5) * 4, 33.0 + 4 * rng.random())
    c.img[:] = _mix(c.img, _col((0.8, 0.85, 0.9)), 0.06)


def _cafe(c: _Canvas, X: float, zb: float, rng) -> None:
    """Café parasols along the sunny side: scale cues, and very much an Italian square."""
    pal = ((0.93, 0.9, 0.82), (0.93, 0.9, 0.82))
    z = zb - 6
    while z > zb - 30:
        _umbrella(c, X - 3.2, z, pal, r=1.6, pole_h=2.4, segs=10)
        z -= 5.0 + rng.random()


def _campanile(rng, w_m, h_m, ppm) -> np.ndarray:
    w, h = max(8, int(w_m * ppm)), max(8, int(h_m * ppm))
    a = np.empty((h, w, 3), np.float32)
    a[:] = _col((0.66, 0.38, 0.26))
    a *= (0.85 + 0.3 * _screen_noise(rng, h, w, ppm * 0.5, 3))[..., None]
    rows = (np.arange(h) % max(2, int(ppm * 0.3))) == 0
    a[rows] *= 0.82
    P = lambda m: m * ppm  # noqa: E731
    stone = _col((0.85, 0.8, 0.7))
    _rect(a, 0, 0, P(0.5), h, stone * 0.95)
    _rect(a, w - P(0.5), 0, w, h, stone * 0.9)
    for yk in (P(1.0), P(7.5), P(9.5)):
        _rect(a, 0, yk - P(0.3), w, yk, stone)
        _rect(a, 0, yk, w, yk + P(0.2), (0.2, 0.12, 0.1), 0.5)
    for k in range(2):
        cx = w * (0.3 + 0.4 * k)
        inside = _arch_mask(h, w, cx, P(3.5), P(1.0), P(7.0))
        a[inside] = _col((0.07, 0.06, 0.06))
    clock_y, r = P(12.5), P(1.4)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx - w / 2, yy - clock_y)
    a[d < r] = _col((0.92, 0.9, 0.84))
    a[(d < r) & (d > r * 0.86)] = _col((0.2, 0.16, 0.12))
    return a


def _fountain(c: _Canvas, fx: float, fz: float) -> None:
    rng = c.rng
    R, rim_h = 5.0, 0.75
    ang = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    ring = lambda r, y: np.stack([fx + r * np.cos(ang), np.full_like(ang, y), fz + r * np.sin(ang)], -1)  # noqa: E731
    stone = _col((0.8, 0.76, 0.68))
    # shadows of basin and obelisk on the floor
    sh = _col((0.5, 0.56, 0.72))
    base_pts = list(zip(fx + R * np.cos(ang), fz + R * np.sin(ang)))
    c.shade(c.mask(_shadow_poly(c, base_pts, rim_h), blur=1.0), sh)
    ob_yaw = 0.5 + rng.random() * 0.3
    ob_h = 10.5
    ob_pts = [(fx + 0.6 * math.cos(a), fz + 0.6 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 8)]
    c.shade(c.mask(_shadow_poly(c, ob_pts, ob_h + 3.5), blur=1.5), sh)
    ped_pts = [(fx + 1.9 * math.cos(a), fz + 1.9 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 12)]
    c.shade(c.mask(_shadow_poly(c, ped_pts, 2.6), blur=1.5), sh)
    # basin wall, lit from the left, dark at its foot
    hull = cv2.convexHull(np.float32(np.concatenate([c.project(ring(R, 0)), c.project(ring(R, rim_h))]))).reshape(-1, 2)
    m = c.mask(hull)
    if m.a.size:
        yy, xx = c.grid(m)
        xs = np.clip((xx - hull[:, 0].min()) / max(1.0, float(np.ptp(hull[:, 0]))), 0, 1)
        lit = 1.0 - 0.55 * xs ** 1.3
        tex = 0.88 + 0.24 * c.noise(m, c.f / fz * 0.3)
        wall = stone[None, None] * (lit * tex)[..., None] * c.light((-0.6, 0, -0.7))
        c.paint(m, wall)
    top = c.mask(c.project(ring(R, rim_h)))
    if top.a.size:
        c.paint(top, stone * c.light((0, 1, 0)) * (0.9 + 0.2 * c.noise(top, 6.0))[..., None])
    # water: sky reflected, darker under the rim, ripples
    wm = c.mask(c.project(ring(R - 0.4, rim_h - 0.05)))
    if wm.a.size:
        rip = c.noise(wm, c.f / fz * 0.25, 3, aspect=4.0)
        yy, _ = c.grid(wm)
        t = np.clip((yy - yy.min()) / max(1.0, float(np.ptp(yy))), 0, 1)
        water = _mix(_col((0.16, 0.3, 0.36)), _col((0.5, 0.66, 0.78)), np.clip(rip * 0.8 + t * 0.3, 0, 1))
        c.paint(wm, water)
    # pedestal and obelisk
    _draw_prism(c, (fx, rim_h - 0.6, fz), (3.4, 2.2, 3.4), ob_yaw, (0.72, 0.68, 0.6))
    _draw_prism(c, (fx, 1.6, fz), (2.6, 0.5, 2.6), ob_yaw, (0.84, 0.8, 0.72))
    _draw_prism(c, (fx, 2.1, fz), (1.9, 0.5, 1.9), ob_yaw, (0.78, 0.72, 0.64))
    gran = _col((0.66, 0.52, 0.48))
    _draw_prism(c, (fx, 2.6, fz), (1.3, ob_h, 1.3), ob_yaw, gran, taper=0.62, top=False, grain=True)
    faces, _, corners = _box_faces((fx, 2.6, fz), (1.3 * 0.62, 0, 1.3 * 0.62), ob_yaw)
    apex = c.project(np.array([fx, 2.6 + ob_h + 1.1, fz]))
    cam = np.array([0.0, c.hc, 0.0])
    for q, n in faces:
        bottom = q[2:4].copy()
        bottom[:, 1] = 2.6 + ob_h
        if np.dot(n, cam - bottom.mean(0)) <= 0:
            continue
        ncol = gran * c.light(n + np.array([0, 0.6, 0]))
        c.paint(c.mask(np.concatenate([c.project(bottom), apex[None]])), ncol)
    # jets arcing from the pedestal into the basin
    pts_all = []
    for k in range(8):
        a0 = ob_yaw + k * math.pi / 4
        pts = []
        for t in np.linspace(0, 1, 16):
            r = 1.5 + t * (R - 2.1)
            y = 1.9 + 1.4 * t - 2.2 * t * t
            pts.append(c.project(np.array([fx + r * math.cos(a0), y, fz + r * math.sin(a0)])))
        pts_all.append(np.array(pts))
    allp = np.concatenate(pts_all)
    x0, y0, x1, y1 = c._box(allp, 6)
    if x1 > x0 and y1 > y0:
        jm = np.zeros((y1 - y0, x1 - x0), np.uint8)
        lw = max(1, int(c.f / fz * 0.1))
        for pts in pts_all:
            loc = np.round((pts - (x0, y0)) * 8).astype(np.int32)
            cv2.polylines(jm, [loc], False, 220, lw, cv2.LINE_AA, shift=3)
        jm = cv2.GaussianBlur(jm.astype(np.float32) / 255, (0, 0), 1.2)
        c.paint(_M(jm * 0.75, y0, x0), _col((0.95, 0.97, 1.0)))


# --------------------------------------------------------------------------------------
# Seaside
# --------------------------------------------------------------------------------------

def _seaside(c: _Canvas) -> None:
    rng = c.rng
    c.yh = 0.44 * c.h
    c.hc = 1.8
    sun_x = c.w * (0.6 + 0.2 * rng.random())
    sun_y = c.yh * 0.12
    c.sun = _norm3(((sun_x - c.cx) / c.f, 1.1, 1.0))
    c.sky((0.28, 0.53, 0.9), (0.8, 0.88, 0.97), sun_xy=(sun_x, sun_y), clouds=0.42 + 0.2 * rng.random(),
          cloud_scale=2600.0)

    y0, x, z, foot = c.ground()
    # the shoreline wanders a little; beyond it is sea, before it sand
    shore_z = 26.0 + 4 * rng.random()
    wave_tex = _tile_fbm(rng, 256, 4, 5)
    shore_off = (_sample(wave_tex, x * 2.0, np.full_like(x, 7.0)) - 0.5) * 6.0
    sz = shore_z + shore_off
    sea = z > sz

    # sea: deep blue far, turquoise in the shallows, sky-bright near the horizon
    depth = np.clip((z - sz) / 120.0, 0, 1)
    sea_col = _mix(_col((0.1, 0.5, 0.54)), _col((0.05, 0.24, 0.44)), depth ** 0.5)
    u = x * 6.0
    v = z * 22.0
    w1 = _sample(wave_tex, u, v)
    w2 = _sample(wave_tex, u, v - 6.0)
    slope = (w1 - w2)
    fres = np.clip(1 - c.hc / np.maximum(z, 1) * 25, 0, 1) ** 2
    fine = np.clip(foot * 4, 0, 1)
    sea_col = sea_col * (1 + (slope * 4.0 * (1 - fine))[..., None])
    sea_col = _mix(sea_col, _col((0.62, 0.74, 0.86)), fres * 0.55)
    # glitter under the sun
    gl = _sample(_tile_noise(rng, 256, 64), x * 40, z * 80)
    sx_world = (sun_x - c.cx) / c.f * z
    beam = np.exp(-((x - sx_world) / (z * 0.1 + 2.0)) ** 2)
    spark = _smooth(0.7, 0.9, gl) * beam * (0.3 + 0.7 * np.clip(z / 200, 0, 1))
    sea_col = sea_col + spark[..., None] * _col((1.0, 0.95, 0.8)) * 1.4
    # breaking lines of foam parallel to the shore
    foam_n = _sample(wave_tex, x * 12.0, z * 3.0)
    d_sh = z - sz
    foam = (_smooth(0.0, 0.25, d_sh) * (1 - _smooth(0.6, 1.8, d_sh))
            + 0.7 * np.exp(-((d_sh - 5.5) / 0.7) ** 2)) * _smooth(0.35, 0.6, foam_n)
    foam = np.clip(foam * (1 - fine * 0.5), 0, 1)
    sea_col = _mix(sea_col, _col((0.95, 0.97, 0.98)), foam)

    # sand: dunes, footprints, wind ripples; darker and glossy where the last wave reached
    sand_tex = _tile_fbm(rng, 256, 6, 5)
    sn = _sample(sand_tex, x * 20, z * 20)
    dune = _sample(sand_tex, x * 1.5 + 40, z * 2.5)
    dune2 = _sample(sand_tex, x * 1.5 + 40, z * 2.5 - 3.0)
    ripple = 0.5 + 0.5 * np.sin(z * 9.0 + _sample(sand_tex, x * 3, z * 3) * 8)
    ripple = _mix(ripple, np.full_like(ripple, 0.5), np.clip(foot * 6, 0, 1))
    prints = _sample(_tile_noise(rng, 256, 96), x * 25, z * 25)
    pits = _smooth(0.8, 0.92, prints) * (1 - np.clip(foot * 5, 0, 1))
    sand = _mix(_col((0.86, 0.74, 0.54)), _col((0.92, 0.82, 0.64)), dune)
    sand = sand * (0.86 + 0.16 * sn + 0.08 * ripple + 0.5 * (dune - dune2) - 0.06 * pits)[..., None]
    wet = _smooth(-4.0, -0.5, z - sz)
    sand = _mix(sand, _col((0.58, 0.48, 0.36)), wet * 0.8)
    ground = np.where(sea[..., None], sea_col, sand * c.light((0, 1, 0)) * 0.78)
    edge = np.abs(z - sz) / np.maximum(foot, 1e-3)
    ground = _mix(ground, sea_col * 0.5 + sand * 0.5, np.clip(1 - edge, 0, 1) * 0.5)
    c.img[y0:] = ground
    _haze(c, y0, z, (0.72, 0.82, 0.92), 400.0, 0.6)

    # headland with a lighthouse
    left = rng.random() < 0.5
    hx0 = 0.0 if left else c.w * 0.55
    hx1 = c.w * 0.45 if left else c.w
    xs = np.arange(c.w, dtype=np.float32)
    prof = _screen_noise(rng, 1, c.w, c.w / 6, 3)[0]
    t = np.clip((xs - hx0) / (hx1 - hx0), 0, 1)
    bump = (1 - t) ** 1.2 if left else t ** 1.2
    top = c.yh - (bump * 0.09 * c.h + prof * 0.015 * c.h) * ((xs >= hx0) & (xs <= hx1))
    hy0 = int(max(0, top.min() - 2))
    hy1 = int(c.yh + 3)
    yy = c._yy[hy0:hy1]
    hill = ((yy >= top[None, :]) & (yy <= c.yh + 1.0)).astype(np.float32)
    hn = _screen_noise(rng, hy1 - hy0, c.w, c.w / 80, 3)
    side_lit = np.gradient(top)[None, :] * (1 if left else -1)
    hill_col = _mix(_col((0.26, 0.36, 0.24)), _col((0.46, 0.5, 0.34)), np.clip(hn + side_lit * 0.3, 0, 1))
    rocks = _smooth(0.0, 0.02 * c.h, yy - (c.yh - 0.012 * c.h))
    hill_col = _mix(hill_col, _col((0.6, 0.56, 0.5)), rocks * 0.8)
    hill_col = _mix(hill_col, _col((0.62, 0.72, 0.82)), 0.3)
    c.paint(_M(cv2.GaussianBlur(hill, (0, 0), 0.8), hy0, 0), hill_col)
    lx = c.w * (0.12 if left else 0.88)
    ly = float(top[int(lx)]) + 0.004 * c.h
    lh, lw = 0.11 * c.h, 0.018 * c.w
    bm = c.mask([(lx - lw, ly), (lx - lw * 0.72, ly - lh), (lx + lw * 0.72, ly - lh), (lx + lw, ly)])
    if bm.a.size:
        yy, xx = c.grid(bm)
        stripes = (np.floor((ly - yy) / (lh / 5)) % 2) == 1
        lcol = np.where(stripes[..., None], _col((0.75, 0.16, 0.14)), _col((0.95, 0.94, 0.9)))
        lcol = lcol * (0.6 + 0.5 * np.clip((xx - (lx - lw)) / (2 * lw), 0, 1))[..., None]
        c.paint(bm, lcol)
    c.paint(c.mask([(lx - lw * 0.9, ly - lh), (lx + lw * 0.9, ly - lh),
                    (lx + lw * 0.9, ly - lh - lw * 0.35), (lx - lw * 0.9, ly - lh - lw * 0.35)]), (0.15, 0.15, 0.15))
    c.paint(c.mask([(lx - lw * 0.5, ly - lh - lw * 0.35), (lx + lw * 0.5, ly - lh - lw * 0.35),
                    (lx + lw * 0.5, ly - lh - lw * 1.2), (lx - lw * 0.5, ly - lh - lw * 1.2)]), (0.85, 0.9, 0.8))
    c.paint(c.mask([(lx - lw * 0.65, ly - lh - lw * 1.2), (lx + lw * 0.65, ly - lh - lw * 1.2),
                    (lx, ly - lh - lw * 1.9)]), (0.55, 0.12, 0.1))
    # a sailboat far out
    bx = c.w * (0.3 + 0.4 * rng.random())
    by = c.yh + 0.012 * c.h
    s = 0.03 * c.h
    c.paint(c.mask([(bx, by - s), (bx, by - 0.1 * s), (bx + 0.55 * s, by - 0.1 * s)]), (0.95, 0.95, 0.93))
    c.paint(c.mask([(bx - 0.3 * s, by - 0.05 * s), (bx + 0.6 * s, by - 0.05 * s), (bx + 0.45 * s, by + 0.1 * s),
                    (bx - 0.2 * s, by + 0.1 * s)]), (0.3, 0.2, 0.15))

    # boardwalk running from the viewer towards the water
    bw_x = (rng.random() - 0.5) * 1.0
    bw_w = 2.2
    bw_end = shore_z - 7
    y0, x, z, foot = c.ground()
    on = (np.abs(x - bw_x) < bw_w / 2) & (z < bw_end)
    plank = 0.25
    pv = z / plank
    pid = np.floor(pv)
    table = rng.random((97, 97), dtype=np.float32)
    pr = _hash2(pid, np.zeros_like(pid), table)
    wood_tex = _tile_fbm(rng, 256, 4, 4)
    grain = _sample(wood_tex, x * 60, z * 4)
    wood = _mix(_col((0.58, 0.44, 0.3)), _col((0.72, 0.58, 0.42)), pr)
    sand_drift = _smooth(0.55, 0.8, _sample(wood_tex, x * 3 + 9, z * 3)) * 0.5
    wood = wood * (0.85 + 0.25 * grain)[..., None] * (1 - 0.6 * _tile_lines(pv, foot / plank, 0.12))[..., None]
    wood = _mix(wood, _col((0.86, 0.75, 0.56)), sand_drift)
    edge_d = (bw_w / 2 - np.abs(x - bw_x)) / np.maximum(foot, 1e-3)
    cover = np.clip(edge_d, 0, 1) * _smooth(0.0, 0.3, bw_end - z)
    wood = wood * c.light((0, 1, 0)) * 0.9
    region = c.img[y0:]
    region[:] = _mix(region, wood, cover * on)
    # its side edge, in shade
    side = np.clip(1 - np.abs(np.abs(x - bw_x) - bw_w / 2 - 0.05) / np.maximum(foot * 1.2, 0.05), 0, 1)
    region[:] = _mix(region, region * 0.5, side * (z < bw_end) * 0.7)

    # umbrellas and sun loungers in rows, back to front
    rows = [(shore_z - 10.0, 3.6), (shore_z - 15.5, 4.0)]
    palettes = [((0.85, 0.2, 0.16), (0.96, 0.94, 0.9)), ((0.1, 0.34, 0.66), (0.96, 0.94, 0.9)),
                ((0.98, 0.66, 0.1), (0.96, 0.94, 0.9)), ((0.1, 0.5, 0.42), (0.96, 0.94, 0.9))]
    pal = palettes[int(rng.integers(len(palettes)))]
    umbrellas = []
    for rz, gap in rows:
        off = rng.random() * gap
        xw = -60 + off
        while xw < 60:
            if abs(xw - bw_x) > 3.0:
                umbrellas.append((xw + (rng.random() - 0.5) * 0.6, rz + (rng.random() - 0.5) * 0.6))
            xw += gap
    umbrellas.sort(key=lambda p: -p[1])
    for ux, uz in umbrellas:
        px, _ = c.project(np.array([ux, 0.0, uz]))
        if px < -c.w * 0.15 or px > c.w * 1.15:
            continue
        _lounger(c, ux + 0.9, uz - 0.8)
        _umbrella(c, ux, uz, pal)


def _lounger(c: _Canvas, x: float, z: float) -> None:
    """A white sun bed: a flat frame with a raised back, seen from the front."""
    w, l = 0.65, 1.9
    c.shade(c.mask(c.project(np.array([[x - w / 2, 0, z], [x + w / 2, 0, z], [x + w / 2 + 0.2, 0, z + l],
                                       [x - w / 2 + 0.2, 0, z + l]])), blur=0.8), (0.7, 0.7, 0.78))
    bed = c.project(np.array([[x - w / 2, 0.35, z], [x + w / 2, 0.35, z], [x + w / 2, 0.35, z + l * 0.65],
                              [x - w / 2, 0.35, z + l * 0.65]]))
    c.paint(c.mask(bed), _col((0.9, 0.9, 0.88)) * c.light((0, 1, 0)))
    front = c.project(np.array([[x - w / 2, 0.35, z], [x + w / 2, 0.35, z], [x + w / 2, 0.2, z],
                                [x - w / 2, 0.2, z]]))
    c.paint(c.mask(front), _col((0.75, 0.75, 0.74)) * (c.light((0, 0, -1)) + 0.25))
    back = c.project(np.array([[x - w / 2, 0.35, z + l * 0.65], [x + w / 2, 0.35, z + l * 0.65],
                               [x + w / 2, 0.95, z + l], [x - w / 2, 0.95, z + l]]))
    c.paint(c.mask(back), _col((0.92, 0.92, 0.9)) * (c.light((0, 0.5, -1)) + 0.35))


def _umbrella(c: _Canvas, ux: float, uz: float, pal, r: float = 1.1, pole_h: float = 2.2,
              segs: int = 8) -> None:
    off = -np.array([c.sun[0], c.sun[2]]) / c.sun[1] * pole_h
    sx, sz = ux + off[0], uz + off[1]
    ang = np.linspace(0, 2 * math.pi, segs * 6, endpoint=False)
    sh = c.project(np.stack([sx + 0.85 * r * np.cos(ang), np.zeros_like(ang), sz + 0.85 * r * np.sin(ang)], -1))
    c.shade(c.mask(sh, blur=1.0), (0.6, 0.62, 0.74))
    base = c.project(np.array([ux, 0.0, uz]))
    topp = c.project(np.array([ux, pole_h, uz]))
    pw = max(0.6, c.f / uz * 0.025)
    c.paint(c.mask([(base[0] - pw, base[1]), (base[0] + pw, base[1]), (topp[0] + pw, topp[1]),
                    (topp[0] - pw, topp[1])]), _col((0.8, 0.78, 0.72)) * c.light((-1, 0, -1)))
    # canopy: a shallow cone, stripes alternating, each panel lit by how it faces the sun
    apex_w = np.array([ux, pole_h + 0.45, uz])
    apex = c.project(apex_w)
    rim_w = np.stack([ux + r * np.cos(ang), np.full_like(ang, pole_h), uz + r * np.sin(ang)], -1)
    rim = c.project(rim_w)
    drop = c.project(rim_w - np.array([0, 0.18, 0]))
    cam = np.array([0.0, c.hc, 0.0])
    panels = []
    for k in range(segs):
        i0, i1 = k * 6, (k + 1) * 6
        idx = [i % len(ang) for i in range(i0, i1 + 1)]
        a_mid = ang[(i0 + 3) % len(ang)]
        nrm = np.array([math.cos(a_mid) * 0.45, 1.0, math.sin(a_mid) * 0.45])
        mid = (rim_w[idx].mean(0) + apex_w) / 2
        depth_key = np.linalg.norm(mid - cam)
        panels.append((depth_key, idx, nrm, k))
    for _, idx, nrm, k in sorted(panels, key=lambda p: -p[0]):
        colr = _col(pal[k % 2])
        lit = c.light(nrm)
        # cloth glows a little when the sun is behind it
        glow = 0.25 * max(0.0, float(c.sun[2]))
        c.paint(c.mask(np.concatenate([apex[None], rim[idx]])), colr * (lit + glow))
        val = np.concatenate([rim[idx], drop[idx][::-1]])
        c.paint(c.mask(val), colr * (c.sky_col + glow + 0.1))
# --------------------------------------------------------------------------------------
# Monument
# --------------------------------------------------------------------------------------

def _temple_front(rng, n_cols: int, width_m: float, ppm: float, side: bool) -> tuple[np.ndarray, np.ndarray]:
    """A Doric front (or flank) as texture + alpha; the pediment only on the front."""
    steps_h, col_h, ent_h = 1.6, 8.8, 3.2
    ped_h = 3.6 if not side else 0.0
    h_m = steps_h + col_h + ent_h + ped_h
    w, h = max(8, int(width_m * ppm)), max(8, int(h_m * ppm))
    P = lambda m: m * ppm  # noqa: E731
    stone = _col((0.8, 0.63, 0.4))
    tex = (0.8 + 0.3 * _screen_noise(rng, h, w, P(1.5), 5))[..., None]
    pits = _smooth(0.8, 0.9, _screen_noise(rng, h, w, P(0.15), 3))
    a = stone * tex * (1 - 0.2 * pits)[..., None]
    alpha = np.ones((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # pediment triangle
    ped_base = P(ped_h)
    if ped_h > 0:
        half = w / 2
        roof_y = ped_base * (np.abs(xx - half) / half)
        alpha = (yy >= roof_y - 1).astype(np.float32)
        tymp = (yy >= roof_y + P(0.6)) & (yy < ped_base - P(0.3))
        a[tymp] *= 0.8
        raking = (yy >= roof_y) & (yy < roof_y + P(0.5))
        a[raking] *= 1.08
        a[(yy >= roof_y + P(0.5)) & (yy < roof_y + P(0.65))] *= 0.6
    # entablature: cornice (lit), frieze with triglyphs, architrave
    e0 = ped_base
    _rect(a, 0, e0, w, e0 + P(0.6), stone * 1.08)
    _rect(a, 0, e0 + P(0.6), w, e0 + P(0.85), stone * 0.45)
    fr0, fr1 = e0 + P(0.85), e0 + P(2.0)
    c_spacing = (width_m - 1.6) / (n_cols - 1)
    step = c_spacing / 2
    k = 0
    xk = 0.8
    while xk <= width_m:
        tx = P(xk)
        _rect(a, tx - P(0.35), fr0, tx + P(0.35), fr1, stone * 0.78)
        for g in (-0.12, 0.12):
            _rect(a, tx + P(g) - P(0.04), fr0, tx + P(g) + P(0.04), fr1, stone * 0.45)
        xk += step
        k += 1
    _rect(a, 0, fr1, w, fr1 + P(0.15), stone * 0.55)
    _rect(a, 0, fr1 + P(0.15), w, e0 + P(ent_h), stone * 0.98)
    # colonnade: shadowed cella between fluted, cylinder-shaded columns
    c0, c1 = e0 + P(ent_h), e0 + P(ent_h + col_h)
    cella = _col((0.36, 0.28, 0.2)) * (0.75 + 0.3 * _screen_noise(rng, h, w, P(1.0), 3))[..., None]
    band = (yy >= c0) & (yy < c1)
    a[band] = cella[band] * np.clip(0.7 + 0.5 * (yy[band] - c0) / (c1 - c0), 0, 1.2)[:, None]
    _rect(a, 0, c0, w, c0 + P(0.9), (0.12, 0.09, 0.07), 0.6)   # shadow under the architrave
    if side:  # a doorway glimpse is only on the front; flanks show the cella wall courses
        for yk in np.arange(c0, c1, P(0.55)):
            _rect(a, 0, yk, w, yk + max(1, P(0.03)), (0.1, 0.08, 0.06), 0.4)
    else:
        _rect(a, w / 2 - P(1.6), c0 + P(1.6), w / 2 + P(1.6), c1, (0.04, 0.03, 0.03), 0.85)
    col_noise = (0.9 + 0.25 * _screen_noise(rng, h, w, P(0.8), 3))[..., None]
    r0, r1 = int(max(0, c0)), int(min(h, math.ceil(c1)))
    for i in range(n_cols):
        cx = P(0.8 + i * c_spacing)
        rb, rt = P(0.85), P(0.66)
        x0, x1 = int(max(0, cx - rb - P(0.2) - 2)), int(min(w, cx + rb + P(1.3) + 2))
        if x1 <= x0 or r1 <= r0:
            continue
        sub = a[r0:r1, x0:x1]
        ys, xs_ = yy[r0:r1, x0:x1], xx[r0:r1, x0:x1]
        t = (ys - c0) / max(1.0, c1 - c0)
        rad = rt + (rb - rt) * t + P(0.06) * np.sin(t * math.pi)  # entasis
        dx = (xs_ - cx) / np.maximum(rad, 1)
        colm = np.abs(dx) <= 1
        theta = np.arcsin(np.clip(dx, -1, 1))
        light = np.clip(0.55 + 0.6 * np.cos(theta + 0.7), 0.25, 1.2)
        flutes = 0.88 + 0.12 * np.cos(theta * 10)
        cs = stone * col_noise[r0:r1, x0:x1]
        # cast shadow of each column on the cella behind, falling to the right
        sh = (xs_ > cx + rad) & (xs_ < cx + rad + P(1.0)) & ~colm
        sub[sh] *= 0.7
        sub[colm] = cs[colm] * (light * flutes)[colm][:, None]
        # capital: echinus and abacus
        _rect(a, cx - P(1.05), c0, cx + P(1.05), c0 + P(0.3), stone * 1.02)
        _rect(a, cx - P(0.95), c0 + P(0.3), cx + P(0.95), c0 + P(0.55), stone * 0.8)
    # steps: lit treads, shaded risers
    s0 = c1
    n_steps = 3
    for s in range(n_steps):
        ys = s0 + s * P(steps_h / n_steps)
        _rect(a, 0, ys, w, ys + P(0.12), stone * 1.15)
        _rect(a, 0, ys + P(0.12), w, ys + P(steps_h / n_steps), stone * 0.72)
    return np.clip(a, 0, 1.3), alpha


def _cypress(c: _Canvas, x: float, z: float, h: float, w: float, rng) -> None:
    base = c.project(np.array([x, 0, z]))
    top = c.project(np.array([x, h, z]))
    pw = c.f * w / z
    hh = base[1] - top[1]
    ts = np.linspace(0, 1, 30)
    prof = np.sin(np.clip(ts * 0.92 + 0.04, 0, 1) * math.pi) ** 0.6 * (1 - 0.4 * ts)
    jit = 1 + 0.14 * (rng.random(30) - 0.5)
    left = [(base[0] - pw * p * j, base[1] - hh * t) for t, p, j in zip(ts, prof, jit)]
    right = [(base[0] + pw * p * j, base[1] - hh * t) for t, p, j in zip(ts[::-1], prof[::-1], jit[::-1])]
    m = c.mask(left + right)
    if not m.a.size:
        return
    c.shade(c.mask(_shadow_poly(c, [(x - w, z), (x + w, z), (x, z + w)], h * 0.8), blur=2.0), (0.55, 0.6, 0.72))
    m = c.mask(left + right)
    yy, xx = c.grid(m)
    n = c.noise(m, max(2.0, pw * 0.3), 4, aspect=0.6)
    side = np.clip((xx - (base[0] - pw)) / (2 * pw + 1), 0, 1)
    lit = np.clip(1.25 - 1.1 * side + (n - 0.5) * 1.2, 0.2, 1.3)
    col = _col((0.13, 0.22, 0.11)) * lit[..., None] * c.light((-1, 0.3, -1))
    c.paint(m, col)


def _pine(c: _Canvas, x: float, z: float, h: float, rng) -> None:
    """An umbrella pine: bare leaning trunk, flat lumpy crown — the Italian landscape signature."""
    b = c.project(np.array([x, 0, z]))
    lean = (rng.random() - 0.5) * h * 0.25
    t = c.project(np.array([x + lean, h * 0.78, z]))
    tw = c.f * 0.3 / z
    c.paint(c.mask([(b[0] - tw, b[1]), (b[0] + tw, b[1]), (t[0] + tw * 0.6, t[1]), (t[0] - tw * 0.6, t[1])]),
            (0.26, 0.19, 0.14))
    cr = c.f * h * 0.42 / z
    for _ in range(7):  # the crown is a cluster of flat clumps
        ox = (rng.random() - 0.5) * cr * 1.3
        oy = -(rng.random()) * cr * 0.22
        rx = cr * (0.35 + 0.3 * rng.random())
        m = c.ellipse_mask(t[0] + ox, t[1] + oy, rx, rx * 0.38)
        if not m.a.size:
            continue
        yy, xx = c.grid(m)
        n = c.noise(m, max(2.0, rx * 0.25), 3)
        m.a *= _smooth(0.25, 0.45, n * 0.6 + m.a * 0.6)
        v = np.clip((yy - (t[1] + oy - rx * 0.38)) / (rx * 0.76 + 1), 0, 1)
        col = _col((0.17, 0.25, 0.13)) * (1.35 - 0.9 * v)[..., None] * (0.75 + 0.5 * n)[..., None]
        c.paint(m, col * c.light((-0.5, 1, -0.5)))


def _monument(c: _Canvas) -> None:
    rng = c.rng
    c.yh = 0.5 * c.h
    c.hc = 1.6
    c.sun = _norm3((-0.6, 0.62, -0.5))
    c.sky((0.3, 0.54, 0.9), (0.8, 0.87, 0.95), clouds=0.2 + 0.2 * rng.random(), cloud_scale=3500.0)
    # distant hills
    prof = _screen_noise(rng, 1, c.w, c.w / 3, 4)[0]
    top = c.yh - (0.025 + 0.05 * prof) * c.h
    hy0 = int(max(0, top.min() - 2))
    hy1 = int(c.yh) + 2
    hill = (c._yy[hy0:hy1] >= top[None, :]).astype(np.float32)
    hn = _screen_noise(rng, hy1 - hy0, c.w, c.w / 60, 3)
    c.paint(_M(cv2.GaussianBlur(hill, (0, 0), 1.0), hy0, 0),
            _mix(_col((0.48, 0.56, 0.56)), _col((0.62, 0.7, 0.76)), hn * 0.6))
    # grass ground, then a paved forecourt leading to the temple
    y0, x, z, foot, pave = _paving(c, tile=(1.6, 1.0), colors=((0.74, 0.66, 0.52), (0.6, 0.53, 0.42)),
                                   joint=0.06, shade_var=0.3)
    gt = _tile_fbm(rng, 256, 6, 5)
    gn = _sample(gt, x * 8, z * 8)
    gn2 = _sample(gt, x * 60 + 11, z * 60)
    grass = _mix(_col((0.34, 0.42, 0.18)), _col((0.56, 0.54, 0.28)), gn)
    grass = grass * (0.8 + 0.35 * _mix(gn2, np.full_like(gn2, 0.5), np.clip(foot * 5, 0, 1)))[..., None]
    tz = 44.0 + 6 * rng.random()
    court_w = 14.0 + 3 * rng.random()
    # grass creeps between the slabs towards the edges of the forecourt
    edge = (court_w - np.abs(x)) / court_w
    inside = _smooth(0.0, 0.15, edge + (gn - 0.5) * 0.25) * (z < tz + 2)
    ground = _mix(grass, pave, inside) * c.light((0, 1, 0)) * 0.85
    c.img[y0:] = ground
    _haze(c, y0, z, (0.74, 0.8, 0.86), 600.0, 0.6)

    # trees behind the temple
    for _ in range(4):
        px = (rng.random() - 0.5) * 160
        _pine(c, px, tz + 30 + rng.random() * 40, 14 + rng.random() * 4, rng)

    # the temple, turned a little so one flank shows; the flank faces away from the sun
    yaw = -0.32 - 0.1 * rng.random()
    front_w, depth = 22.0, 44.0
    ppm = min(48.0, c.f / tz * 1.2)
    ca, sa = math.cos(yaw), math.sin(yaw)
    cxw = -3.0 - 2 * rng.random()

    def P(lx, ly, lz):
        return np.array([cxw + lx * ca - lz * sa, ly, tz + lx * sa + lz * ca])

    front, fa = _temple_front(rng, 6, front_w, ppm, side=False)
    flank, fla = _temple_front(rng, 13, depth, ppm, side=True)
    body_h = 1.6 + 8.8 + 3.2
    ped = 3.6
    n_front = _norm3(P(0, 0, -1) - P(0, 0, 0))
    n_side = _norm3(P(1, 0, 0) - P(0, 0, 0))
    cam = np.array([0, c.hc, 0])
    # the temple's own shadow on the ground behind and to its right
    fp = [P(-front_w / 2, 0, 0), P(front_w / 2, 0, 0), P(front_w / 2, 0, depth), P(-front_w / 2, 0, depth)]
    c.shade(c.mask(_shadow_poly(c, [(p[0], p[2]) for p in fp], body_h), blur=2.0), (0.5, 0.55, 0.7))
    if np.dot(n_side, cam - P(front_w / 2, 0, depth / 2)) > 0:
        quad = c.project(np.array([P(front_w / 2, body_h, 0), P(front_w / 2, body_h, depth),
                                   P(front_w / 2, 0, depth), P(front_w / 2, 0, 0)]))
        c.warp(flank * c.light(n_side), quad, fla)
    quad = c.project(np.array([P(-front_w / 2, body_h + ped, 0), P(front_w / 2, body_h + ped, 0),
                               P(front_w / 2, 0, 0), P(-front_w / 2, 0, 0)]))
    c.warp(front * c.light(n_front), quad, fa)
    # fallen drums and blocks on the grass: the ruin is old
    for _ in range(5):
        bx = (court_w + 2 + rng.random() * 12) * (1 if rng.random() < 0.5 else -1)
        bz = tz - 4 - rng.random() * 16
        s = 0.6 + rng.random() * 0.6
        _draw_prism(c, (bx, 0, bz), (s * 1.6, s, s * 1.2), rng.random() * 3, (0.78, 0.66, 0.48), grain=True)

    # cypresses flanking the forecourt, nearer than the temple
    for side in (-1, 1):
        for k in range(2):
            px = side * (court_w + 5 + k * 6 + rng.random() * 3)
            _cypress(c, px, tz - 8 - k * 7, 11 + rng.random() * 4, 1.3, rng)
    _pine(c, -court_w - 22 - rng.random() * 5, 24.0, 13.0, rng)


# --------------------------------------------------------------------------------------
# Mountain
# --------------------------------------------------------------------------------------

def _mountain(c: _Canvas) -> None:
    rng = c.rng
    c.yh = 0.52 * c.h
    c.hc = 1.7
    c.sun = _norm3((-0.8, 0.5, 0.25))
    c.sky((0.2, 0.45, 0.86), (0.72, 0.83, 0.96), clouds=0.25 + 0.2 * rng.random(), cloud_scale=4000.0)
    W, H = c.w, c.h
    xs = np.arange(W, dtype=np.float32)

    def band(top, bottom):
        y0 = int(max(0, top.min() - 2))
        y1 = int(min(H, bottom + 2))
        return y0, y1, c._yy[y0:y1], c._xx[y0:y1]

    _terrain(c, rng)

    # meadow with the path; it ends at a forest edge, beyond which there is only mountain
    z_end = 200.0 + 60 * rng.random()
    y0g, x, z, foot = c.ground()
    gt = _tile_fbm(rng, 256, 5, 5)
    g1 = _sample(gt, x * 3, z * 3)
    g3 = _sample(gt, x * 0.6 + 50, z * 0.6)
    g2 = _sample(gt, x * 40 + 17, z * 40)
    fade = np.clip(foot * 6, 0, 1)
    g2 = _mix(g2, np.full_like(g2, 0.5), fade)
    grass = _mix(_col((0.26, 0.44, 0.14)), _col((0.52, 0.58, 0.2)), np.clip(g1 * 0.6 + g3 * 0.6 - 0.1, 0, 1))
    grass = grass * (0.7 + 0.5 * g2)[..., None]
    # scattered flowers: bright specks whose size follows perspective
    fl = _sample(_tile_noise(rng, 256, 128), x * 60, z * 60)
    fl_pick = _sample(_tile_noise(rng, 256, 64), x * 30, z * 30)
    dots = _smooth(0.8, 0.9, fl) * (1 - fade)
    flc = np.where((fl_pick > 0.5)[..., None], _col((0.95, 0.85, 0.3)), _col((0.7, 0.42, 0.85)))
    flc = np.where((fl_pick > 0.78)[..., None], _col((0.98, 0.98, 0.95)), flc)
    grass = _mix(grass, flc, dots * 0.9)
    # the path winds away from the viewer
    ph = rng.random() * 6.28
    center = 1.8 * np.sin(z / 9.0 + ph) + 0.6 * np.sin(z / 3.1 + ph * 2) - 1.8 * math.sin(ph)
    half = 0.7 + 0.25 * (g1 - 0.5)
    d = (half - np.abs(x - center)) / np.maximum(foot, 1e-3)
    on = np.clip(d * 0.5, 0, 1) * _smooth(z_end, z_end * 0.5, z)
    pt = _tile_fbm(rng, 256, 8, 5)
    pn = _sample(pt, x * 30, z * 30)
    gravel = _mix(_col((0.46, 0.38, 0.3)), _col((0.66, 0.58, 0.48)), pn)
    rut = np.exp(-((np.abs(x - center) - 0.3) / 0.1) ** 2) * (1 - fade)
    gravel = gravel * (1 - 0.2 * rut)[..., None]
    verge = np.clip(1 - np.abs(d) * 0.3, 0, 1) * (1 - fade)
    ground = _mix(grass, gravel, on) * (1 - 0.25 * verge)[..., None] * c.light((0, 1, 0))
    ground = _mix(ground, _col((0.68, 0.78, 0.9)), (1 - np.exp(-z / 1500.0)) * 0.6)
    c.img[y0g:] = _mix(c.img[y0g:], ground, _smooth(z_end, z_end * 0.9, z))

    # conifer forest at the meadow's far edge
    fy = c.y_of(z_end)
    tree_top = np.full(W, fy, np.float32)
    for _ in range(int(W / 3)):
        tx = rng.random() * W
        th = (0.025 + 0.045 * rng.random()) * H
        tw = th * 0.26
        lo, hi = int(max(0, tx - tw)), int(min(W, tx + tw + 1))
        if hi <= lo:
            continue
        prof = fy - 0.012 * H * rng.random() - th * (1 - np.abs(xs[lo:hi] - tx) / tw)
        tree_top[lo:hi] = np.minimum(tree_top[lo:hi], prof)
    tree_top -= _screen_noise(rng, 1, W, W / 6, 3)[0] * 0.05 * H
    y0, y1, yy, xx = band(tree_top, fy + 1)
    fm = ((yy >= tree_top[None]) & (yy <= fy + 1)).astype(np.float32)
    tn = _screen_noise(rng, y1 - y0, W, W / 250, 2)
    tl = np.clip(1.0 - (yy - tree_top[None]) / (0.05 * H), 0, 1)
    fcol = _col((0.07, 0.15, 0.09)) * (0.6 + 0.6 * tn + 0.5 * tl * (1 - tn))[..., None]
    c.paint(_M(cv2.GaussianBlur(fm, (0, 0), 0.7), y0, 0), fcol)
    _chalet(c, (18 + rng.random() * 20) * (1 if rng.random() < 0.5 else -1), 70 + rng.random() * 30, rng)


def _ridged(rng, n: int, cells: int, octaves: int) -> np.ndarray:
    """Ridged multifractal: sharp crests and eroded valleys, which is what makes rock read."""
    out = np.zeros((n, n), np.float32)
    amp, total, weight = 1.0, 0.0, np.ones((n, n), np.float32)
    for i in range(octaves):
        cc = cells * 2 ** i
        if cc > n // 2:
            break
        r = 1.0 - np.abs(2.0 * _tile_noise(rng, n, cc) - 1.0)
        r = r * r * weight
        weight = np.clip(r * 1.6, 0, 1)
        out += amp * r
        total += amp
        amp *= 0.5
    return out / total


def _terrain(c: _Canvas, rng) -> None:
    """Far mountains from a heightfield, drawn with a y-buffer like a voxel-space renderer.

    A painted ridge line cannot give lit and shaded flanks, gullies, snow that stays on the
    gentle slopes and a valley receding into haze; a real heightfield gives all of that
    from one light direction.
    """
    n = 512
    X0, X1, Z0, Z1 = -16000.0, 16000.0, 2500.0, 26000.0
    zz = np.linspace(Z0, Z1, n, dtype=np.float32)[:, None]
    ridge = _ridged(rng, n, 6, 7)
    massif = _tile_fbm(rng, n, 2, 3)
    hills = _tile_fbm(rng, n, 6, 4)
    rise = _smooth(Z0 + 1500, Z0 + 7000, zz)
    T = 60 + 220 * hills + rise * (300 + 3900 * ridge ** 1.3 * (0.3 + 0.9 * massif))
    dxm = (X1 - X0) / (n - 1)
    dzm = (Z1 - Z0) / (n - 1)
    gz, gx = np.gradient(T, dzm, dxm)
    nrm = np.stack([-gx, np.ones_like(T), -gz], -1)
    nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True)
    diff = np.clip(nrm @ c.sun.astype(np.float32), 0, 1)
    # cast shadows: sweep from the sun's side, keeping the lowest unshadowed height
    tan_e = c.sun[1] / math.hypot(c.sun[0], c.sun[2])
    shadow = np.zeros_like(T)
    run = T[:, 0].copy()
    order = range(n) if c.sun[0] < 0 else range(n - 1, -1, -1)
    for i in order:
        run = np.maximum(run - dxm * tan_e, T[:, i])
        shadow[:, i] = (run - T[:, i] > 2.0).astype(np.float32)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.8)
    slope = np.hypot(gx, gz)
    tex = _tile_fbm(rng, n, 16, 4)
    snowline = 0.5 * float(T.max()) + 400 * (tex - 0.5)
    snow = _smooth(-60, 60, T - snowline) * _smooth(1.5, 0.8, slope + 0.8 * (tex - 0.5))
    snow = np.maximum(snow, _smooth(-60, 60, T - snowline - 500) * 0.6)
    treeline = 1500 + 250 * (tex - 0.5)
    forest = _smooth(80, -80, T - treeline) * _smooth(1.1, 0.6, slope)
    grassy = _smooth(1.0, 0.5, slope) * (1 - forest) * (1 - snow)
    rock = _mix(_col((0.3, 0.28, 0.27)), _col((0.5, 0.45, 0.4)), tex)
    alb = _mix(rock, _col((0.4, 0.46, 0.26)), grassy * 0.8)
    alb = _mix(alb, _col((0.1, 0.17, 0.1)), forest)
    alb = _mix(alb, _col((0.96, 0.97, 1.0)), snow)
    direct = diff * (1 - shadow * 0.92)
    amb = 0.25 + 0.2 * nrm[..., 1]
    col = alb * (c.sky_col * amb[..., None] * 2.0 + c.sun_col * direct[..., None] * 1.15)
    col = col.astype(np.float32)

    # slices from near to far; each column keeps the highest point drawn so far
    W, H = c.w, c.h
    K = 420
    zs = np.geomspace(Z0, Z1 * 0.98, K).astype(np.float32)
    px = (np.arange(W, dtype=np.float32) + 0.5 - c.cx)
    xw = px[None, :] * zs[:, None] / c.f
    mu = ((xw - X0) / dxm).astype(np.float32)
    mv = np.repeat(((zs - Z0) / dzm)[:, None], W, 1).astype(np.float32)
    hk = cv2.remap(T.astype(np.float32), mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    drop = zs ** 2 / (2 * 6.371e6) * 0.87  # the earth curves away
    Y = c.yh - c.f * (hk - drop[:, None] - c.hc) / zs[:, None]
    Ymin = np.minimum.accumulate(Y, axis=0)
    y_top = int(max(0, math.floor(Ymin[-1].min())))
    y_bot = int(min(H, math.ceil(c.yh) + 2))
    rows = np.arange(y_top, y_bot, dtype=np.float32) + 0.5
    kidx = np.empty((len(rows), W), np.int32)
    neg = -Ymin
    for x in range(W):
        kidx[:, x] = np.searchsorted(neg[:, x], -rows, side="left")
    vis = kidx < K
    kc = np.minimum(kidx, K - 1)
    kp = np.maximum(kc - 1, 0)
    cols = np.arange(W)[None, :]
    y_prev = np.where(kidx > 0, Ymin[kp, cols], rows[:, None] + 1)
    y_cur = Y[kc, cols]
    t = np.clip((y_prev - rows[:, None]) / np.maximum(y_prev - y_cur, 1e-3), 0, 1)
    t = np.where(kidx > 0, t, 1.0)
    zpix = zs[kp] + (zs[kc] - zs[kp]) * t
    u = (px[None, :] * zpix / c.f - X0) / dxm
    v = (zpix - Z0) / dzm
    out = cv2.remap(col, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT)
    grain = _screen_noise(rng, len(rows), W, max(2.0, W / 400), 2)
    near = _smooth(6000, 2000, zpix)
    out = out * (1 + (grain - 0.5) * 0.35 * near)[..., None]
    haze = 1 - np.exp(-zpix / 30000.0)
    out = _mix(out, _col((0.62, 0.72, 0.88)), haze * 0.75)
    a = vis.astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 0.6)
    c.paint(_M(a, y_top, 0), out)


def _chalet(c: _Canvas, x: float, z: float, rng) -> None:
    """A timber hut with a stone roof, the scale cue that makes peaks read as far and big."""
    yaw = 0.3 + rng.random() * 0.4
    wood = _col((0.42, 0.28, 0.18))
    _draw_prism(c, (x, 0, z), (6.0, 1.0, 5.0), yaw, (0.6, 0.58, 0.55), grain=True)
    _draw_prism(c, (x, 1.0, z), (6.0, 2.6, 5.0), yaw, wood, grain=True, top=False)
    faces, _, corners = _box_faces((x, 3.6, z), (6.8, 0, 5.8), yaw)
    (x0, z0), (x1, z1), (x2, z2), (x3, z3) = corners
    ridge_a = ((x0 + x3) / 2, (z0 + z3) / 2)
    ridge_b = ((x1 + x2) / 2, (z1 + z2) / 2)
    rh = 3.6 + 2.2
    cam = np.array([0.0, c.hc, 0.0])
    slabs = [([(x0, 3.4, z0), (x1, 3.4, z1), (ridge_b[0], rh, ridge_b[1]), (ridge_a[0], rh, ridge_a[1])]),
             ([(x3, 3.4, z3), (x2, 3.4, z2), (ridge_b[0], rh, ridge_b[1]), (ridge_a[0], rh, ridge_a[1])])]
    gables = [[(x0, 3.6, z0), (x3, 3.6, z3), (ridge_a[0], rh, ridge_a[1])],
              [(x1, 3.6, z1), (x2, 3.6, z2), (ridge_b[0], rh, ridge_b[1])]]
    for g in gables:
        g = np.array(g)
        n = np.cross(g[1] - g[0], g[2] - g[0])
        if np.dot(n, cam - g.mean(0)) < 0:
            n = -n
        c.paint(c.mask(c.project(g)), wood * c.light(n))
    for s in slabs:
        s = np.array(s)
        n = np.cross(s[1] - s[0], s[3] - s[0])
        if n[1] < 0:
            n = -n
        c.paint(c.mask(c.project(s)), _col((0.48, 0.47, 0.46)) * c.light(n))


_PAINTERS: dict[str, Callable[[_Canvas], None]] = {
    "piazza": _piazza,
    "seaside": _seaside,
    "monument": _monument,
    "mountain": _mountain,
}
