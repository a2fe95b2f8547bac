/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_GridResample_h
#define agcl_GridResample_h

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace agcl {

/** Where the output's voxel j falls along one axis, in the input's continuous index: scale * j
 *  + offset. Two grids that share their direction (the coarse grid and the CT, a patch grid and
 *  its slab) map onto each other axis by axis, so a resampling between them is separable. */
struct AxisMapping
{
  double scale = 1.0;
  double offset = 0.0;
};

/** Trilinear resampling of volume [D, H, W] (floating) onto the grid `size` (D, H, W), as ITK's
 *  ResampleImageFilter with a LinearInterpolateImageFunction does it (the reference of the
 *  tests): an output voxel whose continuous index lies outside [-0.5, n - 0.5) on some axis
 *  takes `fill`; inside, the neighbours beyond the edge are the edge voxels. One axis at a time
 *  (trilinear interpolation is the product of the three 1-D ones), with weights and indices
 *  computed in double on the host, the arithmetic on the volume's device and dtype.
 *  std::invalid_argument for a volume that is not 3-D and floating, a non-finite mapping or
 *  a negative size. */
at::Tensor
ResampleLinear(const at::Tensor &                 volume,
               const std::array<AxisMapping, 3> & mapping,
               const std::array<int64_t, 3> &     size,
               double                             fill);

/** Nearest-neighbour resampling of labels [D, H, W] (any dtype) onto the grid `size`, as ITK's
 *  NearestNeighborInterpolateImageFunction (the nearest index rounds halves up); outside
 *  [-0.5, n - 0.5) on some axis the voxel takes `fill`. Exact: index gathers only. */
at::Tensor
ResampleNearest(const at::Tensor &                 labels,
                const std::array<AxisMapping, 3> & mapping,
                const std::array<int64_t, 3> &     size,
                double                             fill);

} // namespace agcl

#endif
