/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomRendering.h"

namespace itk::phantom {

void
PaintTissues(const Anatomy &              a,
             const Grid &                 grid,
             MultiThreaderBase *          threader,
             std::vector<unsigned char> & tissue,
             unsigned char *              label,
             std::vector<float> &         organValue)
{
  const int64_t nx = grid.nx, ny = grid.ny, nz = grid.nz;
  const auto &  origin = grid.origin;
  const auto &  spacing = grid.spacing;

  // Body, fat, muscle wall, paraspinal and psoas muscles, bowel.
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      const double z = grid.Z(k);
      // The abdomen widens slightly towards the pelvis.
      const double ax = a.bodyHalfWidth * (1.0 + 0.04 * (125 - z) / 125), ay = a.bodyHalfDepth;
      for (int64_t j = 0; j < ny; ++j)
      {
        const double y = grid.Y(j);
        for (int64_t i = 0; i < nx; ++i)
        {
          const double x = grid.X(i);
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
            const double value = organ.Value({ grid.X(i), grid.Y(j), grid.Z(k) });
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
      const double z = grid.Z(k);
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
          const double x = grid.X(i), y = grid.Y(j);
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
}

} // namespace itk::phantom
