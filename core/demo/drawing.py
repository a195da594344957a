"""Drawing a generated shot's frames: coverage and colour of each object at a frame time, with
its strands and motion blur, over the panned, defocused backdrop.

All in scene-linear ACEScg and in float64; coverage is exact (box-filtered edges and strands,
motion blur from sub-frame samples), so the alpha a shot carries is the foreground's true
coverage in every pixel.
"""

from __future__ import annotations

import math

import numpy as np

from .scene import Background, Subject, Strands

SHUTTER = 0.5  # fraction of a frame interval the virtual shutter is open (180 degrees)
MAX_SUBSAMPLES = 6  # motion-blur samples per frame, at most


def _smoothstep01(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _edge_coverage(sdf_px: np.ndarray, soft: float) -> np.ndarray:
    """Coverage from a signed distance in pixels (negative inside)."""
    if soft <= 0.0:
        return np.clip(0.5 - sdf_px, 0.0, 1.0)
    return _smoothstep01(0.5 - sdf_px / soft)


def _outline_radius(obj: Subject, theta: np.ndarray) -> np.ndarray:
    """Radius of blob/star outlines as a function of angle (1 = nominal)."""
    r = np.ones_like(theta)
    for order, amp, phase in obj.harmonics:
        r = r + amp * np.cos(order * theta + phase)
    return r


def _shape_sdf(obj: Subject, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the outline in object pixels (negative inside)."""
    a = obj.radius * math.sqrt(obj.aspect)
    b = obj.radius / math.sqrt(obj.aspect)
    if obj.shape == "ellipse":
        return (np.hypot(u / a, v / b) - 1.0) * min(a, b)
    if obj.shape == "box":
        corner = 0.25 * min(a, b)
        qx = np.abs(u) - (a - corner)
        qy = np.abs(v) - (b - corner)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - corner
    rho = np.hypot(u, v)
    if obj.shape == "ring":
        return np.abs(rho - obj.radius * 0.72) - obj.radius * 0.28
    outline = obj.radius * _outline_radius(obj, np.arctan2(v, u))
    return (rho - outline) * (0.75 if obj.shape == "star" else 0.9)


def _texture(obj: Subject, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shaded, patterned linear colour in object coordinates, (..., 3)."""
    period, angle = obj.pattern_params[0], obj.pattern_params[1]
    if obj.pattern == "stripes":
        m = 0.5 + 0.5 * np.tanh(3.0 * np.sin((u * math.cos(angle) + v * math.sin(angle)) / period))
    elif obj.pattern == "checker":
        m = 0.5 + 0.5 * np.tanh(3.0 * np.sin(u / period) * np.sin(v / period))
    elif obj.pattern == "noise":
        k = obj.pattern_params[2:14].reshape(6, 2) * 4.0 / period
        ph = obj.pattern_params[14:20]
        m = 0.5 + 0.5 * np.tanh(sum(np.sin(k[i, 0] * u + k[i, 1] * v + ph[i]) for i in range(6)))
    else:
        m = np.zeros_like(u)
    colour = obj.colours[0] + (obj.colours[1] - obj.colours[0]) * m[..., None]
    shade = np.clip(0.85 + 0.5 * (u * obj.light[0] + v * obj.light[1]) / obj.radius, 0.35, 1.4)
    hx, hy, strength = obj.highlight
    spot = strength * np.exp(-((u / obj.radius - hx) ** 2 + (v / obj.radius - hy) ** 2) / 0.03)
    return colour * shade[..., None] + spot[..., None]


def _strand_boxes(strands: Strands, radius: float, centre: np.ndarray, angle: float,
                  scale: float) -> np.ndarray:
    """Pixel bounding box (x0, y0, x1, y1) of every strand at this pose, (n, 4) floats."""
    c, s = np.cos(strands.angles), np.sin(strands.angles)
    root = radius * strands.root
    side = strands.amps + np.abs(strands.bends) * strands.lengths ** 2 + strands.widths + 1.0
    ends = np.stack([np.stack([root * c, root * s], 1),
                     np.stack([(root + strands.lengths) * c, (root + strands.lengths) * s], 1)])
    ca, sa = math.cos(angle), math.sin(angle)
    px = centre[0] + scale * (ends[..., 0] * ca - ends[..., 1] * sa)
    py = centre[1] + scale * (ends[..., 0] * sa + ends[..., 1] * ca)
    pad = side * scale + 1.0
    return np.stack([px.min(0) - pad, py.min(0) - pad, px.max(0) + pad, py.max(0) + pad], 1)


def _strand_coverage(strands: Strands, i: int, radius: float, u: np.ndarray,
                     v: np.ndarray) -> np.ndarray:
    """Coverage of strand i (a box-filtered thin line) at object coordinates u, v in pixels."""
    c, s = math.cos(strands.angles[i]), math.sin(strands.angles[i])
    du, dv = u - radius * strands.root * c, v - radius * strands.root * s
    along = du * c + dv * s
    across = -du * s + dv * c
    length = strands.lengths[i]
    frac = np.clip(along / length, 0.0, 1.0)
    wave = (strands.amps[i] * np.sin(strands.freqs[i] * along + strands.phases[i]) * frac
            + strands.bends[i] * along ** 2)
    width = strands.widths[i] * (1.0 - (1.0 - strands.taper) * frac)
    cov = np.clip(0.5 + 0.5 * width - np.abs(across - wave), 0.0, np.minimum(width, 1.0))
    return cov * np.clip(along + 0.5, 0.0, 1.0) * np.clip(length - along + 0.5, 0.0, 1.0)


def _object_pose(obj: Subject, t: float, frames: int) -> tuple[np.ndarray, float, float]:
    """Centre (pixels), rotation and scale of the object at time t (in frames)."""
    f = t / max(frames - 1, 1)
    centre = obj.start + (obj.end - obj.start) * f
    centre = centre + obj.wobble[:, 0] * np.sin(obj.wobble[:, 1] * t + obj.wobble[:, 2])
    scale = 1.0 + obj.pulse[0] * math.sin(obj.pulse[1] * t + obj.pulse[2])
    return centre, obj.angle0 + obj.spin * t, scale


def _render_object(obj: Subject, t: float, frames: int, width: int,
                   height: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Premultiplied colour and coverage of one object at time t, inside its bounding box."""
    centre, angle, scale = _object_pose(obj, t, frames)
    reach = obj.extent() * scale
    x0, x1 = max(int(centre[0] - reach), 0), min(int(centre[0] + reach) + 1, width)
    y0, y1 = max(int(centre[1] - reach), 0), min(int(centre[1] + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5 - centre[0]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5 - centre[1]
    ca, sa = math.cos(angle), math.sin(angle)
    u = (xs * ca + ys * sa) / scale
    v = (-xs * sa + ys * ca) / scale
    cov = _edge_coverage(_shape_sdf(obj, u, v) * scale, obj.edge_soft)
    prem = _texture(obj, u, v) * cov[..., None]
    for strands in obj.strands:
        boxes = _strand_boxes(strands, obj.radius, centre, angle, scale)
        for i, (bx0, by0, bx1, by1) in enumerate(boxes):
            sx0, sx1 = max(int(bx0), x0) - x0, min(int(bx1) + 1, x1) - x0
            sy0, sy1 = max(int(by0), y0) - y0, min(int(by1) + 1, y1) - y0
            if sx0 >= sx1 or sy0 >= sy1:
                continue
            box = (slice(sy0, sy1), slice(sx0, sx1))
            hair = _strand_coverage(strands, i, obj.radius, u[box] * scale, v[box] * scale)
            prem[box] = strands.colour * hair[..., None] + prem[box] * (1.0 - hair[..., None])
            cov[box] = hair + cov[box] * (1.0 - hair)
    return (slice(y0, y1), slice(x0, x1)), prem, cov


def motion_samples(objects: list[Subject], frames: int) -> int:
    """Motion-blur samples so that no object moves more than ~1 pixel between samples."""
    fastest = 0.0
    for obj in objects:
        a, _, _ = _object_pose(obj, 0.0, frames)
        b, _, _ = _object_pose(obj, 1.0, frames)
        fastest = max(fastest, float(np.linalg.norm(b - a)) + abs(obj.spin) * obj.extent()
                      + float(np.abs(obj.wobble[:, 0] * obj.wobble[:, 1]).max()))
    return int(np.clip(math.ceil(fastest * SHUTTER), 1, MAX_SUBSAMPLES))


def render_foreground(objects: list[Subject], t: float, frames: int, width: int, height: int,
                       samples: int, in_matte: list[bool] | None = None
                       ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Motion-blurred premultiplied foreground and its exact coverage at frame time t.

    With `in_matte` (one flag per object), also the matte: the coverage of the flagged objects
    only, held out by the unflagged ones in front of them (an object that is drawn but is not
    the subject, like a look-alike the artist did not pick).
    """
    prem = np.zeros((height, width, 3))
    cov = np.zeros((height, width))
    matte = np.zeros((height, width))
    for j in range(samples):
        ts = t + SHUTTER * ((j + 0.5) / samples - 0.5)
        p_s = np.zeros((height, width, 3))
        c_s = np.zeros((height, width))
        m_s = np.zeros((height, width))
        for i, obj in enumerate(objects):  # back to front
            hit = _render_object(obj, ts, frames, width, height)
            if hit is None:
                continue
            box, p, c = hit
            p_s[box] = p + p_s[box] * (1.0 - c[..., None])
            c_s[box] = c + c_s[box] * (1.0 - c)
            if in_matte is not None:
                m_s[box] = (c if in_matte[i] else 0.0) + m_s[box] * (1.0 - c)
        prem += p_s
        cov += c_s
        matte += m_s
    if in_matte is None:
        return prem / samples, cov / samples
    return prem / samples, cov / samples, matte / samples


def render_background(bg: Background, t: float, width: int, height: int) -> np.ndarray:
    """Linear backdrop at time t: defocused fields, soft blobs and bars, panned by the camera."""
    off = bg.pan * t
    xs = np.arange(width, dtype=np.float64) + 0.5 + off[0]
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5 + off[1]

    def field_of(waves: np.ndarray) -> np.ndarray:
        out = np.zeros((height, width))
        for kx, ky, ph, amp in waves:
            out += amp * np.cos(kx * xs + ky * ys + ph)
        return out

    lum = np.exp(bg.contrast * 2.0 * field_of(bg.waves))
    mix = 0.5 + 0.5 * np.tanh(2.0 * field_of(bg.chroma_waves))
    img = (bg.base + (bg.tint - bg.base) * mix[..., None]) * lum[..., None]
    for x, y, sigma, parallax, r, g, b in bg.blobs:
        px, py = x - off[0] * (parallax - 1.0), y - off[1] * (parallax - 1.0)
        w = np.exp(-((xs - off[0] - px) ** 2 + (ys - off[1] - py) ** 2) / (2 * sigma ** 2))
        img = img * (1.0 + w[..., None] * (np.array([r, g, b]) - 1.0))
    for x, half, soft, angle, gain in bg.bars:
        d = np.abs((xs - x) * math.cos(angle) - ys * math.sin(angle)) - half
        w = _smoothstep01(0.5 - d / soft)
        img = img * (1.0 + w[..., None] * (gain - 1.0))
    return img
