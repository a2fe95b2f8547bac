/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AttentionMap_h
#define agcl_AttentionMap_h

#include <ATen/core/Tensor.h>

#include <array>

namespace agcl {

/** How GrowByMargin computes its minima (both give the same region, tested). */
enum class MarginKernels
{
  Automatic, ///< CpuLoop for a CPU mask, TensorOps elsewhere
  TensorOps, ///< shifted minima of whole tensors: any device (one kernel per offset and axis)
  CpuLoop    ///< the same sums fused in one parallel loop per axis, without temporaries: CPU only
};

/** Buffers GrowByMargin's CPU loop keeps between calls (its passes' 16-bit planes and the region
 *  it returns), so that a caller growing many regions (an organ per slab) reuses their memory
 *  instead of touching fresh pages each time. Not shared between threads. */
struct MarginWorkspace
{
  at::Tensor first, second, region;
  at::Tensor mask; ///< not used by GrowByMargin: where a caller may keep the masks it passes
};

/** An organ's attention region as tensor work, on the mask's device (issue 17: the stages
 *  between the networks in the core, so that a GPU keeps the volume): every voxel whose centre
 *  lies within `margin_mm` (Euclidean, in mm) of the centre of a voxel of `mask`, the mask
 *  included. The same rule as itk::CoarseAttentionFilter's distance map (distance <= margin
 *  + 1e-6 mm), which stays the reference.
 *
 *  mask [D, H, W] (bool or any integer/floating type, non-zero = organ) -> bool [D, H, W].
 *  spacing_mm: the voxel spacing along D, H, W (z, y, x for an ITK image's buffer).
 *
 *  Exact: the squared distance is separable (Saito & Toriwaki), d^2(v) = min over organ voxels
 *  u of sum_a s_a^2 (v_a - u_a)^2, so it is computed one axis at a time as a running minimum of
 *  f(i + t) + s_a^2 t^2. Only offsets |t| <= ceil(margin / s_a) can matter for a voxel within
 *  the margin (each axis' part of its nearest distance is at most the distance), so each axis
 *  takes 2 ceil(margin / s_a) shifted minima over the mask's bounding box grown by the margin,
 *  in float64. Both kernels compute the same sums and so the same region (tested). When H and W
 *  share their spacing s (an axial CT plane), the CPU loop works in 16-bit integers instead: the
 *  in-plane squared distance is s^2 (tx^2 + ty^2) with integer offsets, exact in int16 for reaches
 *  up to 90 voxels, and the last axis compares it with one integer bound per axial offset (the
 *  rule decided in double): the same region, 4x the SIMD lanes and a quarter of the memory.
 *  std::invalid_argument for a mask that is not 3-D, a spacing that is not finite and > 0, a
 *  margin that is not finite and >= 0, or CpuLoop for a mask that is not on the CPU.
 *
 *  With `workspace` (a CPU mask), the returned region is workspace->region: valid until the next
 *  call with the same workspace (copy it to keep it). */
at::Tensor
GrowByMargin(const at::Tensor &            mask,
             const std::array<double, 3> & spacing_mm,
             double                        margin_mm,
             MarginKernels                 kernels = MarginKernels::Automatic,
             MarginWorkspace *             workspace = nullptr);

} // namespace agcl

#endif
