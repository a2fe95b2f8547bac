/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomImageSource.h"

#include "itkImageRegionIterator.h"
#include "itkMultiThreaderBase.h"
#include "itkSmoothingRecursiveGaussianImageFilter.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace itk {

namespace {
// ---------------------------------------------------------------------------------------------
// Geometry. Patient LPS millimetres: x towards the patient's left, y posterior, z towards the
// head; z = 0 is the bottom of the field of view (mid L4), the top (~250 mm) is about T8.
// ---------------------------------------------------------------------------------------------
struct Vec3
{
  double x{ 0 }, y{ 0 }, z{ 0 };
  Vec3
  operator+(const Vec3 & o) const
  {
    return { x + o.x, y + o.y, z + o.z };
  }
  Vec3
  operator-(const Vec3 & o) const
  {
    return { x - o.x, y - o.y, z - o.z };
  }
  Vec3
  operator*(double s) const
  {
    return { x * s, y * s, z * s };
  }
  double
  dot(const Vec3 & o) const
  {
    return x * o.x + y * o.y + z * o.z;
  }
  double
  norm() const
  {
    return std::sqrt(dot(*this));
  }
};

// Rotation from Euler angles (radians) about x, then y, then z; stored as rows.
struct Rot
{
  double m[3][3]{ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
  static Rot
  Euler(double ax, double ay, double az)
  {
    const double cx = std::cos(ax), sx = std::sin(ax), cy = std::cos(ay), sy = std::sin(ay), cz = std::cos(az),
                 sz = std::sin(az);
    Rot r;
    // R = Rz * Ry * Rx
    r.m[0][0] = cz * cy;
    r.m[0][1] = cz * sy * sx - sz * cx;
    r.m[0][2] = cz * sy * cx + sz * sx;
    r.m[1][0] = sz * cy;
    r.m[1][1] = sz * sy * sx + cz * cx;
    r.m[1][2] = sz * sy * cx - cz * sx;
    r.m[2][0] = -sy;
    r.m[2][1] = cy * sx;
    r.m[2][2] = cy * cx;
    return r;
  }
  // R^T v: world -> local
  Vec3
  ToLocal(const Vec3 & v) const
  {
    return { m[0][0] * v.x + m[1][0] * v.y + m[2][0] * v.z,
             m[0][1] * v.x + m[1][1] * v.y + m[2][1] * v.z,
             m[0][2] * v.x + m[1][2] * v.y + m[2][2] * v.z };
  }
  Vec3
  ToWorld(const Vec3 & v) const
  {
    return { m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
             m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
             m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z };
  }
};

// Ellipsoid in the organ's local frame; value |q / r| - 1 (< 0 inside).
struct Ellipsoid
{
  Vec3 center; // local to the organ
  Vec3 radii;
  bool subtract{ false }; // carves (e.g. the renal hilum)
  Rot  tilt{};            // the part's own orientation inside the organ frame
};

// Tube along a polyline; radii (rx, ry) of an elliptic section that may vary along it.
struct Tube
{
  std::vector<Vec3>   points;         // world mm
  std::vector<double> radius;         // per point (x half-axis)
  double              flatten{ 1.0 }; // ry / rx of the section, applied in world y
};

// Low-frequency displacement: three sinusoids with random directions.
struct Deformation
{
  Vec3   direction[3];
  Vec3   wave[3];
  double phase[3]{ 0, 0, 0 };
  double amplitude[3]{ 0, 0, 0 };
  Vec3
  Apply(const Vec3 & p) const
  {
    Vec3 q = p;
    for (int k = 0; k < 3; ++k)
      q = q + direction[k] * (amplitude[k] * std::sin(wave[k].dot(p) + phase[k]));
    return q;
  }
};

struct Organ
{
  unsigned char          label{ 0 };
  Vec3                   center;
  Rot                    rotation;
  double                 scale{ 1.0 }; // applied to ellipsoid centres and radii, tube radii
  std::vector<Ellipsoid> blobs;
  std::vector<Tube>      tubes;
  Deformation            deformation;
  double                 smoothness{ 0.15 }; // smooth-union width (normalised units)
  Vec3                   lower, upper;       // world bounding box (mm)

  // Normalised implicit value at world point p: < 0 inside, about -1 at the centre of a part.
  double
  Value(const Vec3 & world) const
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
  UpdateBounds()
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

  bool
  InBox(const Vec3 & p) const
  {
    return p.x >= lower.x && p.x <= upper.x && p.y >= lower.y && p.y <= upper.y && p.z >= lower.z && p.z <= upper.z;
  }

  // Volume (mL) this organ will have in the label map, sampled on a `step` mm grid: points inside
  // the body and not taken by an organ painted after it (`winners`).
  template <typename TInBody>
  double
  Volume(double step, const std::vector<const struct Organ *> & winners, TInBody inBody) const
  {
    int64_t count = 0;
    for (double z = lower.z + step / 2; z < upper.z; z += step)
      for (double y = lower.y + step / 2; y < upper.y; y += step)
        for (double x = lower.x + step / 2; x < upper.x; x += step)
        {
          const Vec3 p{ x, y, z };
          if (Value(p) >= 0 || !inBody(p))
            continue;
          bool taken = false;
          for (const Organ * w : winners)
            if (w->InBox(p) && w->Value(p) < 0)
            {
              taken = true;
              break;
            }
          count += taken ? 0 : 1;
        }
    return count * step * step * step / 1000.0;
  }
};

class Random
{
public:
  explicit Random(uint64_t seed)
    : m_Engine(seed)
  {}
  double
  Uniform(double a, double b)
  {
    // Our own mapping from 53 random bits: identical across standard libraries.
    const double u = static_cast<double>(m_Engine() >> 11) * (1.0 / 9007199254740992.0);
    return a + (b - a) * u;
  }
  double
  Normal()
  {
    // Box-Muller, also library-independent.
    double u1 = Uniform(0, 1);
    while (u1 <= 1e-300)
      u1 = Uniform(0, 1);
    const double u2 = Uniform(0, 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

private:
  std::mt19937_64 m_Engine;
};

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

// Per-organ HU ranges (phantom-reference.md): {NC low, NC high, PV low, PV high}.
struct HURange
{
  double ncLow, ncHigh, pvLow, pvHigh;
};
const HURange kOrganHU[13] = {
  { 0, 0, 0, 0 },       // background (unused)
  { 40, 50, 110, 130 }, // 1 spleen
  { 25, 35, 150, 200 }, // 2 right kidney (PV: cortex brighter than medulla)
  { 25, 35, 150, 200 }, // 3 left kidney
  { 0, 20, 0, 20 },     // 4 gallbladder (bile does not enhance)
  { 30, 45, 60, 90 },   // 5 esophagus
  { 50, 65, 100, 130 }, // 6 liver
  { 30, 45, 60, 100 },  // 7 stomach wall (contents: water 0-15 or air)
  { 35, 50, 130, 180 }, // 8 aorta
  { 35, 50, 110, 150 }, // 9 IVC
  { 35, 50, 150, 200 }, // 10 portal & splenic veins
  { 35, 45, 90, 120 },  // 11 pancreas
  { 10, 30, 40, 70 },   // 12 right adrenal
};

// Target volumes (mL): the middle half of the reference ranges.
const double kTargetVolume[13][2] = {
  { 0, 0 },     { 175, 225 }, { 132, 158 }, { 132, 158 }, { 35, 45 }, { 0, 0 },     { 1350, 1650 },
  { 280, 420 }, { 0, 0 },     { 0, 0 },     { 0, 0 },     { 75, 85 }, { 4.5, 5.5 },
};

struct Anatomy
{
  double             bodyScale{ 1 };
  double             bodyHalfWidth{ 160 }, bodyHalfDepth{ 115 }, bodyCenterY{ 0 };
  double             fatThickness{ 15 }, muscleThickness{ 10 };
  double             spineY{ 55 };
  std::vector<Organ> organs; // painting order: later ones win
  std::vector<Tube>  bowel;
  double             bowelAirLevel{ 0 };
  double             stomachAirLevel{ 0 };
  double             hu[13]{};           // per-organ base HU for the chosen phase
  double             kidneyMedulla{ 0 }; // PV medulla HU
  double             stomachContent{ 10 };
  double             noiseSigma{ 15 };
};

Organ
MakeOrgan(unsigned char label, Random & rng, const Vec3 & center, const Vec3 & euler, double jitter, double deformation)
{
  Organ o;
  o.label = label;
  o.center = center + Vec3{ rng.Uniform(-jitter, jitter), rng.Uniform(-jitter, jitter), rng.Uniform(-jitter, jitter) };
  const double tilt = 10.0 * M_PI / 180.0;
  o.rotation = Rot::Euler(euler.x + rng.Uniform(-tilt, tilt) * 0.5,
                          euler.y + rng.Uniform(-tilt, tilt) * 0.5,
                          euler.z + rng.Uniform(-tilt, tilt));
  o.deformation = RandomDeformation(rng, deformation);
  return o;
}

// Scales an organ so that the volume it will have in the label map (inside the body, minus what
// the organs painted after it take) hits `target` mL.
template <typename TInBody>
void
Calibrate(Organ & organ, double target, bool tubeOnly, const std::vector<const Organ *> & winners, TInBody inBody)
{
  for (int iteration = 0; iteration < 3; ++iteration)
  {
    organ.UpdateBounds();
    const double volume = organ.Volume(organ.label == 12 ? 0.5 : 2.0, winners, inBody);
    if (volume <= 0)
      return;
    const double ratio = target / volume;
    organ.scale *= tubeOnly ? std::sqrt(ratio) : std::cbrt(ratio);
  }
  organ.UpdateBounds();
}

Tube
CurvedTube(const std::vector<Vec3> & control, const std::vector<double> & radii, double flatten, int samples = 24)
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

Anatomy
BuildAnatomy(uint64_t seed, AbdominalPhantomImageSource::ModalityEnum modality)
{
  Random       rng(Mix(seed, 1));
  Anatomy      a;
  const double b = rng.Uniform(0.88, 1.02); // body size
  a.bodyScale = b;
  a.bodyHalfWidth = 160 * b;
  a.bodyHalfDepth = 115 * b;
  a.bodyCenterY = 0;
  a.fatThickness = rng.Uniform(10, 25);
  a.muscleThickness = rng.Uniform(8, 12);
  a.spineY = 0.50 * a.bodyHalfDepth;
  const double sy = a.spineY;
  auto         P = [b](double x, double y, double z) { return Vec3{ x * b, y * b, z }; };
  const double deg = M_PI / 180.0;

  // 6 liver: right lobe, posterior-inferior extension towards the right kidney, left lobe.
  Organ liver = MakeOrgan(6, rng, P(-62, 0, 178), { 0, 0, -15 * deg }, 6, 5);
  liver.blobs = { { { 0, 0, 0 }, { 78, 72, 62 } },
                  { { -8, 30, -52 }, { 45, 38, 38 } },
                  { { 62, -30, 12 }, { 55, 30, 38 } } };
  // 7 stomach: fundus, body, antrum curving to the right.
  Organ stomach = MakeOrgan(7, rng, P(55, -25, 168), { 0, 0, 0 }, 6, 5);
  stomach.blobs = { { { 5, 18, 30 }, { 38, 32, 32 } },
                    { { -5, -15, -8 }, { 40, 28, 40 } },
                    { { -42, -25, -40 }, { 32, 22, 22 } } };
  // 1 spleen: crescent against the left posterior ribs.
  Organ spleen = MakeOrgan(1, rng, P(98, 42, 172), { 0, 0, 35 * deg }, 5, 4);
  spleen.blobs = { { { 0, 0, 0 }, { 22, 50, 46 } }, { { -10, 22, -18 }, { 18, 32, 30 } } };
  // 2 right kidney (1-2 cm lower) and 3 left kidney: bean with a medial hilum.
  const double rkDrop = rng.Uniform(12, 20);
  Organ        rightKidney = MakeOrgan(2, rng, P(-72, 48, 112 - rkDrop), { 0, -12 * deg, -20 * deg }, 4, 3);
  rightKidney.blobs = { { { 0, 0, 0 }, { 26, 24, 52 } }, { { 22, 0, 0 }, { 12, 10, 16 }, true } };
  Organ leftKidney = MakeOrgan(3, rng, P(72, 48, 117), { 0, 12 * deg, 20 * deg }, 4, 3);
  leftKidney.blobs = { { { 0, 0, 0 }, { 26, 24, 52 } }, { { -22, 0, 0 }, { 12, 10, 16 }, true } };
  // 4 gallbladder: pear under the liver's inferior surface, anterior, right of midline.
  Organ gallbladder = MakeOrgan(4, rng, P(-48, -42, 128), { 25 * deg, 0, 0 }, 4, 2);
  gallbladder.blobs = { { { 0, 0, -8 }, { 16, 15, 26 } }, { { 0, 0, 16 }, { 10, 9, 16 } } };
  // 11 pancreas: head by the IVC (right), body across the midline at L1-L2, tail to the splenic hilum.
  Organ                   pancreas = MakeOrgan(11, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 3);
  const Vec3              panOffset{ rng.Uniform(-5, 5), rng.Uniform(-4, 4), rng.Uniform(-6, 6) };
  const std::vector<Vec3> panControl = {
    P(-42, -2, 92) + panOffset, P(-8, -14, 100) + panOffset, P(35, -6, 110) + panOffset, P(78, 22, 128) + panOffset
  };
  pancreas.tubes = { CurvedTube(panControl, { 17, 13, 11, 9 }, 0.75) };
  // 12 right adrenal: inverted V above the right kidney, behind the IVC, medial to the liver.
  Organ adrenal = MakeOrgan(12, rng, P(-34, 38, 152 - rkDrop * 0.5), { 0, 0, -30 * deg }, 3, 1);
  // Two thin limbs (about 5 mm thick) joined at the top, spreading downwards: an inverted V.
  adrenal.blobs = { { { -6, 0, -6 }, { 2.6, 10, 15 }, false, Rot::Euler(0, 22 * deg, 0) },
                    { { 6, 0, -6 }, { 2.6, 10, 15 }, false, Rot::Euler(0, -22 * deg, 0) } };
  adrenal.smoothness = 0.3;
  // 5 esophagus: left-anterior of the spine, joins the stomach at ~T11.
  const Vec3   stomachTop = stomach.center + Vec3{ -5 * b, 10 * b, 28 };
  Organ        esophagus = MakeOrgan(5, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double er = rng.Uniform(10.0, 11.5);
  // In front of the aorta (not on it), then forwards and to the left into the stomach.
  esophagus.tubes = { CurvedTube(
    { P(2, sy - 56, 262), P(6, sy - 58, 228), P(16, sy - 64, 198), stomachTop }, { er, er, er, er * 1.1 }, 0.9) };
  // 8 aorta: left-anterior of the vertebral bodies through the whole volume.
  Organ        aorta = MakeOrgan(8, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double ar = rng.Uniform(10.5, 12.0);
  aorta.tubes = { CurvedTube(
    { P(14, sy - 30, -10), P(18, sy - 32, 80), P(16, sy - 30, 170), P(12, sy - 26, 262) }, { ar, ar, ar, ar }, 1.0) };
  // 9 IVC: right-anterior of the spine, oval, into the liver's groove at the top.
  Organ        ivc = MakeOrgan(9, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double vr = rng.Uniform(13.5, 15.0);
  ivc.tubes = { CurvedTube({ P(-22, sy - 28, -10), P(-24, sy - 30, 90), P(-28, sy - 36, 170), P(-26, sy - 40, 262) },
                           { vr, vr, vr, vr * 0.95 },
                           0.72) };
  // 10 portal vein (confluence behind the pancreas neck to the liver hilum) and splenic vein
  //    (along the back of the pancreas to the splenic hilum).
  Organ        veins = MakeOrgan(10, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double pr = rng.Uniform(6.0, 7.0);
  const Vec3   confluence = P(-8, -14, 100) + panOffset + Vec3{ 0, 17 * b, 6 };
  veins.tubes = {
    CurvedTube({ confluence, confluence + Vec3{ -14 * b, -6 * b, 22 }, P(-44, -6, 150) }, { pr, pr, pr * 0.9 }, 1.0),
    CurvedTube({ confluence,
                 P(35, 9, 112) + panOffset,
                 P(76, 36, 132) + panOffset,
                 spleen.center + Vec3{ -18 * b, -6 * b, -10 } },
               { pr * 0.9, pr * 0.85, pr * 0.8, pr * 0.8 },
               1.0),
  };

  // Sizes from the reference ranges, calibrated from the last-painted organ backwards so that each
  // organ's label-map volume accounts for the organs that overwrite it.
  double targets[13];
  for (unsigned char label : { 6, 7, 1, 2, 3, 4, 11, 12 })
    targets[label] = rng.Uniform(kTargetVolume[label][0], kTargetVolume[label][1]);
  const double ax = a.bodyHalfWidth, ay = a.bodyHalfDepth;
  auto         inBody = [ax, ay](const Vec3 & p) {
    const double wx = ax * (1.0 + 0.04 * (125 - p.z) / 125);
    return (p.x / wx) * (p.x / wx) + (p.y / ay) * (p.y / ay) < 1.0;
  };
  for (Organ * o : { &esophagus, &aorta, &ivc, &veins })
    o->UpdateBounds();
  std::vector<Organ *> order = { &liver,    &stomach, &spleen,    &rightKidney, &leftKidney, &gallbladder,
                                 &pancreas, &adrenal, &esophagus, &veins,       &ivc,        &aorta };
  for (int index = static_cast<int>(order.size()) - 1; index >= 0; --index)
  {
    Organ * organ = order[index];
    if (organ->label == 5 || organ->label >= 8 && organ->label <= 10)
      continue; // tubes keep their drawn radii
    std::vector<const Organ *> winners(order.begin() + index + 1, order.end());
    Calibrate(*organ, targets[organ->label], organ->label == 11, winners, inBody);
  }

  a.organs = { liver,    stomach, spleen,    rightKidney, leftKidney, gallbladder,
               pancreas, adrenal, esophagus, veins,       ivc,        aorta };

  // Bowel loops in the lower anterior abdomen (unlabelled, as in BTCV).
  for (int loop = 0; loop < 5; ++loop)
  {
    const double      x0 = rng.Uniform(-90, 90) * b, z0 = rng.Uniform(10, 80), y0 = rng.Uniform(-70, -10) * b;
    std::vector<Vec3> control;
    for (int c = 0; c < 4; ++c)
      control.push_back({ x0 + rng.Uniform(-40, 40) * b, y0 + rng.Uniform(-15, 15) * b, z0 + rng.Uniform(-25, 25) });
    const double r = rng.Uniform(10, 15);
    a.bowel.push_back(CurvedTube(control, { r, r, r, r }, 1.0));
  }
  a.bowelAirLevel = rng.Uniform(0.3, 0.6);
  a.stomachAirLevel = rng.Uniform(0.55, 0.8);

  // Intensities for the phase: each organ's mean drawn inside the middle of its range.
  const bool pv = modality == AbdominalPhantomImageSource::ModalityEnum::PortalVenous;
  for (int label = 1; label <= 12; ++label)
  {
    const HURange & r = kOrganHU[label];
    const double    lo = pv ? r.pvLow : r.ncLow, hi = pv ? r.pvHigh : r.ncHigh;
    a.hu[label] = rng.Uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo));
  }
  // Kidneys in PV: cortex brighter than medulla, mean inside 150-200.
  a.kidneyMedulla = pv ? rng.Uniform(150, 162) : 0;
  a.stomachContent = rng.Uniform(3, 12);
  Random noise(Mix(seed, 2)); // the noise level is a property of the subject's scan
  a.noiseSigma = noise.Uniform(11.0, 18.0);
  return a;
}

enum Tissue : unsigned char
{
  Air,
  SubcutaneousFat,
  Muscle,
  VisceralFat,
  Cancellous,
  Cortical,
  Disc,
  BowelWall,
  BowelWater,
  BowelAir,
};

} // namespace

// ---------------------------------------------------------------------------------------------

const std::vector<AbdominalPhantomImageSource::OrganDescription> &
AbdominalPhantomImageSource::GetOrgans()
{
  static const std::vector<OrganDescription> organs = {
    { 1, "spleen", { 157, 108, 162 } },           { 2, "right_kidney", { 185, 102, 83 } },
    { 3, "left_kidney", { 255, 187, 118 } },      { 4, "gallbladder", { 139, 150, 98 } },
    { 5, "esophagus", { 211, 171, 143 } },        { 6, "liver", { 221, 130, 101 } },
    { 7, "stomach", { 216, 101, 79 } },           { 8, "aorta", { 255, 50, 50 } },
    { 9, "inferior_vena_cava", { 0, 151, 206 } }, { 10, "portal_and_splenic_veins", { 0, 112, 165 } },
    { 11, "pancreas", { 249, 180, 111 } },        { 12, "right_adrenal_gland", { 244, 214, 49 } },
  };
  return organs;
}

std::string
AbdominalPhantomImageSource::GetModalityName(ModalityEnum modality)
{
  return modality == ModalityEnum::PortalVenous ? "contrast" : "noncontrast";
}

AbdominalPhantomImageSource::ModalityEnum
AbdominalPhantomImageSource::ParseModality(const std::string & text)
{
  if (text == "contrast")
    return ModalityEnum::PortalVenous;
  if (text == "noncontrast")
    return ModalityEnum::NonContrast;
  itkGenericExceptionMacro(<< "modality '" << text << "': expected 'contrast' or 'noncontrast'");
}

std::ostream &
operator<<(std::ostream & os, AbdominalPhantomImageSource::ModalityEnum modality)
{
  return os << AbdominalPhantomImageSource::GetModalityName(modality);
}

AbdominalPhantomImageSource::AbdominalPhantomImageSource()
{
  m_Size[0] = 512;
  m_Size[1] = 512;
  m_Size[2] = 100;
  m_FieldOfView[0] = 350.0;
  m_FieldOfView[1] = 350.0;
  m_FieldOfView[2] = 250.0;
  this->SetNumberOfRequiredOutputs(2);
  this->SetNthOutput(0, this->MakeOutput(0));
  this->SetNthOutput(1, this->MakeOutput(1));
}

ProcessObject::DataObjectPointer
AbdominalPhantomImageSource::MakeOutput(DataObjectPointerArraySizeType index)
{
  if (index == 1)
  {
    return LabelImageType::New().GetPointer();
  }
  return CTImageType::New().GetPointer();
}

AbdominalPhantomImageSource::LabelImageType *
AbdominalPhantomImageSource::GetLabelOutput()
{
  return dynamic_cast<LabelImageType *>(this->ProcessObject::GetOutput(1));
}

void
AbdominalPhantomImageSource::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  for (unsigned int d = 0; d < 3; ++d)
  {
    if (m_Size[d] == 0 || m_Size[d] > 4096)
    {
      itkExceptionMacro(<< "Size " << m_Size << ": expected 1..4096 voxels along every axis");
    }
    if (!(m_FieldOfView[d] > 0) || !std::isfinite(m_FieldOfView[d]))
    {
      itkExceptionMacro(<< "FieldOfView " << m_FieldOfView << ": expected positive extents in mm");
    }
  }
}

void
AbdominalPhantomImageSource::GenerateOutputInformation()
{
  CTImageType::RegionType region;
  region.SetSize(m_Size);
  CTImageType::SpacingType spacing;
  CTImageType::PointType   origin;
  for (unsigned int d = 0; d < 3; ++d)
  {
    spacing[d] = m_FieldOfView[d] / m_Size[d];
    // Centred in x and y; z from 0 (bottom of the field of view) upwards.
    origin[d] = d < 2 ? -m_FieldOfView[d] / 2 + spacing[d] / 2 : spacing[d] / 2;
  }
  for (unsigned int i = 0; i < 2; ++i)
  {
    ImageBase<3> * out = dynamic_cast<ImageBase<3> *>(this->ProcessObject::GetOutput(i));
    out->SetLargestPossibleRegion(region);
    out->SetSpacing(spacing);
    out->SetOrigin(origin);
    CTImageType::DirectionType direction;
    direction.SetIdentity();
    out->SetDirection(direction);
  }
}

void
AbdominalPhantomImageSource::GenerateData()
{
  CTImageType *    ct = this->GetOutput();
  LabelImageType * labels = this->GetLabelOutput();
  labels->SetBufferedRegion(labels->GetLargestPossibleRegion());
  ct->SetBufferedRegion(ct->GetLargestPossibleRegion());
  ct->Allocate();
  labels->Allocate();

  const Anatomy a = BuildAnatomy(m_Seed, m_Modality);
  m_NoiseSigma = a.noiseSigma;
  const bool    pv = m_Modality == ModalityEnum::PortalVenous;
  const int64_t nx = m_Size[0], ny = m_Size[1], nz = m_Size[2];
  const auto    spacing = ct->GetSpacing();
  const auto    origin = ct->GetOrigin();
  auto          X = [&](int64_t i) { return origin[0] + i * spacing[0]; };
  auto          Y = [&](int64_t j) { return origin[1] + j * spacing[1]; };
  auto          Z = [&](int64_t k) { return origin[2] + k * spacing[2]; };

  std::vector<unsigned char> tissue(static_cast<size_t>(nx * ny * nz), Air);
  std::vector<float>         organValue(tissue.size(), 0.0f); // implicit value inside the voxel's organ
  unsigned char *            label = labels->GetBufferPointer();
  std::fill(label, label + tissue.size(), 0);

  // Body, fat, muscle wall, paraspinal and psoas muscles, bowel.
  MultiThreaderBase::Pointer threader = MultiThreaderBase::New();
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      const double z = Z(k);
      // The abdomen widens slightly towards the pelvis.
      const double ax = a.bodyHalfWidth * (1.0 + 0.04 * (125 - z) / 125), ay = a.bodyHalfDepth;
      for (int64_t j = 0; j < ny; ++j)
      {
        const double y = Y(j);
        for (int64_t i = 0; i < nx; ++i)
        {
          const double x = X(i);
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          const double e = std::sqrt((x / ax) * (x / ax) + ((y - a.bodyCenterY) / ay) * ((y - a.bodyCenterY) / ay));
          if (e >= 1.0)
            continue;
          const double  depth = (1.0 - e) * std::min(ax, ay);
          unsigned char t = depth < a.fatThickness                       ? SubcutaneousFat
                            : depth < a.fatThickness + a.muscleThickness ? Muscle
                                                                         : VisceralFat;
          if (t == VisceralFat)
          {
            for (int side = -1; side <= 1; side += 2)
            {
              const double px = (x - side * 38 * a.bodyScale) / (26 * a.bodyScale);
              const double py = (y - (a.spineY + 40 * a.bodyScale)) / (22 * a.bodyScale);
              const double qx = (x - side * 42 * a.bodyScale) / (16 * a.bodyScale);
              const double qy = (y - a.spineY) / (16 * a.bodyScale);
              if (px * px + py * py < 1 || (z < 100 && qx * qx + qy * qy < 1))
                t = Muscle;
            }
            for (const Tube & bowel : a.bowel)
            {
              double best = 1e9, along = 0;
              for (size_t s = 0; s + 1 < bowel.points.size(); ++s)
              {
                const Vec3   pa = bowel.points[s], ab = bowel.points[s + 1] - pa;
                const Vec3   p{ x, y, z };
                const double u = std::clamp((p - pa).dot(ab) / std::max(ab.dot(ab), 1e-12), 0.0, 1.0);
                const Vec3   d = p - (pa + ab * u);
                if (d.norm() < best)
                {
                  best = d.norm();
                  along = d.y;
                }
              }
              const double r = bowel.radius[0];
              if (best < r)
              {
                // Air rises to the anterior side (negative y) of the lumen in a supine patient.
                t = best > r - 3.0 ? BowelWall : (along < -r * (1 - 2 * a.bowelAirLevel) ? BowelAir : BowelWater);
                break;
              }
            }
          }
          tissue[v] = t;
        }
      }
    },
    nullptr);

  // Organs in painting order; a later organ wins where two overlap.
  for (const Organ & organ : a.organs)
  {
    auto          clampIndex = [](double v, int64_t n) { return std::clamp<int64_t>(static_cast<int64_t>(v), 0, n); };
    const int64_t i0 = clampIndex(std::floor((organ.lower.x - origin[0]) / spacing[0]), nx),
                  i1 = clampIndex(std::ceil((organ.upper.x - origin[0]) / spacing[0]) + 1, nx);
    const int64_t j0 = clampIndex(std::floor((organ.lower.y - origin[1]) / spacing[1]), ny),
                  j1 = clampIndex(std::ceil((organ.upper.y - origin[1]) / spacing[1]) + 1, ny);
    const int64_t k0 = clampIndex(std::floor((organ.lower.z - origin[2]) / spacing[2]), nz),
                  k1 = clampIndex(std::ceil((organ.upper.z - origin[2]) / spacing[2]) + 1, nz);
    if (i0 >= i1 || j0 >= j1 || k0 >= k1)
      continue;
    threader->ParallelizeArray(
      k0,
      k1,
      [&](SizeValueType k) {
        for (int64_t j = j0; j < j1; ++j)
          for (int64_t i = i0; i < i1; ++i)
          {
            const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
            if (tissue[v] == Air)
              continue;
            const double value = organ.Value({ X(i), Y(j), Z(k) });
            if (value < 0)
            {
              label[v] = organ.label;
              organValue[v] = static_cast<float>(value);
            }
          }
      },
      nullptr);
  }

  // Vertebrae (cortical rim, cancellous core, discs, spinous process) and ribs, where no organ is.
  std::vector<double> vertebraCenters;
  for (double zc = 15; zc < 300; zc += 29.5)
    vertebraCenters.push_back(zc);
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      const double z = Z(k);
      double       nearest = 1e9;
      for (double zc : vertebraCenters)
        nearest = std::min(nearest, std::abs(z - zc));
      const bool   inDisc = nearest > 11.5;
      const double rx = 21 * a.bodyScale, ry = 17 * a.bodyScale;
      const bool   ribLevel = z > 120 && std::fmod(z - 120 + 1000, 26.0) < 8.0;
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
        {
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          if (label[v] != 0 || tissue[v] == Air)
            continue;
          const double x = X(i), y = Y(j);
          const double e = std::sqrt((x / rx) * (x / rx) + ((y - a.spineY) / ry) * ((y - a.spineY) / ry));
          if (e < 1.0)
          {
            tissue[v] = inDisc ? Disc : (e > 1.0 - 2.2 / rx ? Cortical : Cancellous);
            continue;
          }
          // Spinous process and laminae behind the body.
          if (!inDisc && std::abs(x) < 6 * a.bodyScale && y > a.spineY + ry && y < a.spineY + ry + 30 * a.bodyScale)
          {
            tissue[v] = Cortical;
            continue;
          }
          if (ribLevel)
          {
            // Thin bony arcs just inside the muscle wall, from the back round to the anterior flank.
            const double ax = a.bodyHalfWidth * (1.0 + 0.04 * (125 - z) / 125), ay = a.bodyHalfDepth;
            const double eb = std::sqrt((x / ax) * (x / ax) + (y / ay) * (y / ay));
            const double depth = (1.0 - eb) * std::min(ax, ay);
            const double ribDepth = a.fatThickness + a.muscleThickness + 4;
            if (std::abs(depth - ribDepth) < 3.5 && y > -0.55 * ay && std::abs(x) > 30)
              tissue[v] = Cortical;
          }
        }
    },
    nullptr);

  // Intensities (HU) before blur.
  using FloatImage = Image<float, 3>;
  auto hu = FloatImage::New();
  hu->CopyInformation(ct);
  hu->SetRegions(ct->GetLargestPossibleRegion());
  hu->Allocate();
  float *      h = hu->GetBufferPointer();
  const double muscleHU = pv ? 62 : 50;
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      const double z = Z(k);
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
        {
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          double       value = -1000;
          const int    l = label[v];
          if (l != 0)
          {
            value = a.hu[l];
            const double inside = -organValue[v]; // 0 at the surface, ~1 at the centre
            if (l == 2 || l == 3)
            {
              // PV: bright cortex (outer shell), darker medulla; NC: uniform.
              if (pv)
                value = inside < 0.22 ? 2 * a.hu[l] - a.kidneyMedulla : a.kidneyMedulla;
            }
            else if (l == 7)
            {
              // Stomach: enhancing wall, then water contents with an air cap anteriorly.
              if (inside > 0.14)
              {
                const Organ & st = a.organs[1];
                const double  yTop = st.lower.y + (st.upper.y - st.lower.y) * (1.0 - a.stomachAirLevel) * 0.6;
                value = Y(j) < yTop ? -1000 : a.stomachContent;
              }
            }
            // Gentle low-frequency texture, +-3 HU.
            value += 3.0 * std::sin(0.05 * X(i) + 0.7 * l) * std::cos(0.04 * Y(j) - 0.3 * l) * std::sin(0.03 * z + l);
          }
          else
          {
            switch (tissue[v])
            {
              case Air:
                value = -1000;
                break;
              case SubcutaneousFat:
              case VisceralFat:
                value = -100;
                break;
              case Muscle:
              case BowelWall:
                value = muscleHU;
                break;
              case Cancellous:
                value = 250;
                break;
              case Cortical:
                value = 1000;
                break;
              case Disc:
                value = 80;
                break;
              case BowelWater:
                value = 10;
                break;
              case BowelAir:
                value = -1000;
                break;
              default:
                break;
            }
          }
          h[v] = static_cast<float>(value);
        }
    },
    nullptr);

  // Partial-volume blur (about half a voxel) and noise.
  auto blur = SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>::New();
  blur->SetInput(hu);
  SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>::SigmaArrayType sigma;
  for (unsigned int d = 0; d < 3; ++d)
    sigma[d] = 0.45 * spacing[d];
  blur->SetSigmaArray(sigma);
  blur->SetNumberOfWorkUnits(1); // deterministic
  blur->Update();
  const float * blurred = blur->GetOutput()->GetBufferPointer();
  short *       out = ct->GetBufferPointer();
  // One stream per slice, seeded from (seed, modality, slice): deterministic whatever the threads.
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      Random noise(Mix(Mix(m_Seed, 100 + static_cast<uint64_t>(m_Modality)), k));
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
        {
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          double       value = blurred[v];
          if (value > -990) // scanner noise inside the body; air outside stays flat
            value += a.noiseSigma * noise.Normal();
          out[v] = static_cast<short>(std::clamp(std::lround(value), -1024L, 3071L));
        }
    },
    nullptr);
}

void
AbdominalPhantomImageSource::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Size: " << m_Size << std::endl;
  os << indent << "FieldOfView: " << m_FieldOfView << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "Modality: " << m_Modality << std::endl;
  os << indent << "NoiseSigma: " << m_NoiseSigma << std::endl;
}

} // namespace itk
