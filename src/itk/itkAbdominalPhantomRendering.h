/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAbdominalPhantomRendering_h
#define itkAbdominalPhantomRendering_h

// From the phantom's anatomy to voxels (private header of the ITK layer): the tissue class and
// organ label of every voxel (itkAbdominalPhantomTissues.cxx), then its HU, partial-volume blur
// and scanner noise (itkAbdominalPhantomIntensities.cxx).

#include "itkAbdominalPhantomAnatomy.h"
#include "itkMultiThreaderBase.h"

#include <array>
#include <cstdint>
#include <vector>

namespace itk::phantom {

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

// The voxel grid: sizes, the centre of voxel 0 and the spacing (mm); voxel (i, j, k) is at index
// (k * ny + j) * nx + i of every buffer.
struct Grid
{
  int64_t               nx{ 0 }, ny{ 0 }, nz{ 0 };
  std::array<double, 3> origin{}, spacing{};

  // Physical coordinates (mm) of voxel index i, j, k along x, y, z.
  double
  X(int64_t i) const
  {
    return origin[0] + i * spacing[0];
  }
  double
  Y(int64_t j) const
  {
    return origin[1] + j * spacing[1];
  }
  double
  Z(int64_t k) const
  {
    return origin[2] + k * spacing[2];
  }
};

// What occupies each voxel: `tissue` (a Tissue) for the body wall, fat, muscles, bowel, vertebrae
// and ribs; `label` (0 or the organ's label) for the organs, painted in the anatomy's order (a
// later organ wins where two overlap; bone only where no organ is); `organValue` the organ's
// implicit value there (-1 at its centre, 0 at its surface). Buffers of nx * ny * nz values.
void
PaintTissues(const Anatomy &              a,
             const Grid &                 grid,
             MultiThreaderBase *          threader,
             std::vector<unsigned char> & tissue,
             unsigned char *              label,
             std::vector<float> &         organValue);

// The HU of each voxel before blur and noise: each organ's base HU of the phase (`pv`: portal
// venous) with its inner structure (kidney cortex and medulla, stomach contents and air) and a
// gentle texture; fixed HU per tissue class elsewhere.
void
RenderIntensities(const Anatomy &                    a,
                  const Grid &                       grid,
                  bool                               pv,
                  MultiThreaderBase *                threader,
                  const std::vector<unsigned char> & tissue,
                  const unsigned char *              label,
                  const std::vector<float> &         organValue,
                  float *                            hu);

// Partial-volume blur (Gaussian of 0.45 voxel) of `hu`, then scanner noise of the subject's
// level inside the body (one random stream per slice from (seed, modality, slice), so the result
// does not depend on the threads), rounded and clamped to -1024..3071 into `out`.
void
BlurAndAddNoise(const Anatomy &     a,
                const Grid &        grid,
                uint64_t            seed,
                uint64_t            modality,
                MultiThreaderBase * threader,
                Image<float, 3> *   hu,
                short *             out);

} // namespace itk::phantom

#endif
