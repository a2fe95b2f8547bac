/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAbdominalPhantomGeometry_h
#define itkAbdominalPhantomGeometry_h

// Geometry of the abdominal phantom (private header of the ITK layer): vectors and rotations,
// the parts an organ is made of (ellipsoids, tubes), its smooth deformation, the organ as an
// implicit surface, and the phantom's random numbers (the same on every standard library).
// Patient LPS millimetres: x towards the patient's left, y posterior, z towards the head; z = 0
// is the bottom of the field of view (mid L4), the top (~250 mm) is about T8.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace itk::phantom {

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
  Value(const Vec3 & world) const;

  // Conservative world bounding box (lower, upper): every part's extent plus the deformation
  // amplitude.
  void
  UpdateBounds();

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

// splitmix64 of the pair: decorrelated streams for (seed, purpose).
uint64_t
Mix(uint64_t a, uint64_t b);

// Low-frequency displacement of about `amplitude` mm: three sinusoids with random directions
// and wavelengths of 60-120 mm.
Deformation
RandomDeformation(Random & rng, double amplitude);

// A Catmull-Rom curve through `control`, sampled at `samples` + 1 points, its radius interpolated
// between the control points' and its section flattened in y by `flatten`.
Tube
CurvedTube(const std::vector<Vec3> & control, const std::vector<double> & radii, double flatten, int samples = 24);

} // namespace itk::phantom

#endif
