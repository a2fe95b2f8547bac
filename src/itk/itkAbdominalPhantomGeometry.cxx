/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomGeometry.h"

namespace itk::phantom {

double
Organ::Value(const Vec3 & world) const
{
  const Vec3 p = deformation.Apply(world);
  double     value = 1e9;
  auto       unite = [this](double a, double b) {
    const double k = smoothness;
    const double h = std::max(k - std::abs(a - b), 0.0) / k;
    return std::min(a, b) - h * h * k * 0.25;
  };
  const Vec3 local = rotation.ToLocal(p - center);
  // Normalised radius of a part, minus one: < 0 inside.
  auto ellipsoid = [&local, this](const Ellipsoid & e) {
    const Vec3 q = e.tilt.ToLocal(local - e.center * scale);
    return std::sqrt((q.x * q.x) / (e.radii.x * e.radii.x * scale * scale) +
                     (q.y * q.y) / (e.radii.y * e.radii.y * scale * scale) +
                     (q.z * q.z) / (e.radii.z * e.radii.z * scale * scale)) -
           1.0;
  };
  for (const Ellipsoid & e : blobs)
  {
    if (!e.subtract)
    {
      const double v = ellipsoid(e);
      value = value > 1e8 ? v : unite(value, v);
    }
  }
  for (const Tube & t : tubes)
  {
    double best = 1e9;
    for (size_t i = 0; i + 1 < t.points.size(); ++i)
    {
      const Vec3   a = t.points[i], b = t.points[i + 1];
      const Vec3   ab = b - a;
      const double u = std::clamp((p - a).dot(ab) / std::max(ab.dot(ab), 1e-12), 0.0, 1.0);
      Vec3         d = p - (a + ab * u);
      d.y /= t.flatten;
      const double r = (t.radius[i] * (1 - u) + t.radius[i + 1] * u) * scale;
      best = std::min(best, d.norm() / r - 1.0);
    }
    value = value > 1e8 ? best : unite(value, best);
  }
  for (const Ellipsoid & e : blobs)
  {
    if (e.subtract)
      value = std::max(value, -ellipsoid(e));
  }
  return value;
}

void
Organ::UpdateBounds()
{
  // Conservative box: every part's extent plus the deformation amplitude.
  double margin = 2.0;
  for (double a : deformation.amplitude)
    margin += std::abs(a);
  Vec3 lo{ 1e9, 1e9, 1e9 }, hi{ -1e9, -1e9, -1e9 };
  auto extend = [&](const Vec3 & c, double r) {
    lo = { std::min(lo.x, c.x - r), std::min(lo.y, c.y - r), std::min(lo.z, c.z - r) };
    hi = { std::max(hi.x, c.x + r), std::max(hi.y, c.y + r), std::max(hi.z, c.z + r) };
  };
  for (const Ellipsoid & e : blobs)
  {
    if (e.subtract)
      continue;
    const double r = std::max({ e.radii.x, e.radii.y, e.radii.z }) * scale;
    extend(center + rotation.ToWorld(e.center * scale), r * 1.05 + margin);
  }
  for (const Tube & t : tubes)
    for (size_t i = 0; i < t.points.size(); ++i)
      extend(t.points[i], t.radius[i] * scale * std::max(1.0, t.flatten) * 1.05 + margin);
  lower = lo;
  upper = hi;
}

uint64_t
Mix(uint64_t a, uint64_t b)
{
  // splitmix64 of the pair: decorrelated streams for (seed, purpose).
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E5F5ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Deformation
RandomDeformation(Random & rng, double amplitude)
{
  Deformation d;
  for (int k = 0; k < 3; ++k)
  {
    Vec3 dir{ rng.Normal(), rng.Normal(), rng.Normal() };
    dir = dir * (1.0 / std::max(dir.norm(), 1e-9));
    Vec3         w{ rng.Normal(), rng.Normal(), rng.Normal() };
    const double wavelength = rng.Uniform(60.0, 120.0);
    w = w * (2 * M_PI / wavelength / std::max(w.norm(), 1e-9));
    d.direction[k] = dir;
    d.wave[k] = w;
    d.phase[k] = rng.Uniform(0, 2 * M_PI);
    d.amplitude[k] = amplitude * rng.Uniform(0.5, 1.0);
  }
  return d;
}

Tube
CurvedTube(const std::vector<Vec3> & control, const std::vector<double> & radii, double flatten, int samples)
{
  // Catmull-Rom through the control points.
  Tube t;
  t.flatten = flatten;
  const int n = static_cast<int>(control.size());
  for (int s = 0; s <= samples; ++s)
  {
    const double u = static_cast<double>(s) / samples * (n - 1);
    const int    i = std::min(static_cast<int>(u), n - 2);
    const double f = u - i;
    const Vec3   p0 = control[std::max(i - 1, 0)], p1 = control[i], p2 = control[i + 1],
               p3 = control[std::min(i + 2, n - 1)];
    const double f2 = f * f, f3 = f2 * f;
    const Vec3   p =
      (p1 * 2.0 + (p2 - p0) * f + (p0 * 2.0 - p1 * 5.0 + p2 * 4.0 - p3) * f2 + (p1 * 3.0 - p0 - p2 * 3.0 + p3) * f3) *
      0.5;
    t.points.push_back(p);
    t.radius.push_back(radii[i] * (1 - f) + radii[i + 1] * f);
  }
  return t;
}

} // namespace itk::phantom
