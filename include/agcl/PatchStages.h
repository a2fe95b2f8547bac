/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_PatchStages_h
#define agcl_PatchStages_h

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <vector>

namespace agcl {

/** Where a query patch lies in a slab's voxel grid: pixel (q, r) of the patch (column q, row r)
 *  is at the continuous index first + q column + r row (x, y, z: the buffer's axes 0, 1, 2, x
 *  fastest). `organ` is the patch's index into the organ-ordered tensors (attention masks,
 *  boxes); `planar` says that every pixel lies on the slice round(first z), the patch is then
 *  interpolated bilinearly on that slice (the z weight is taken as 0). */
struct PatchFrame
{
  std::array<double, 3> first{};
  std::array<double, 3> column{};
  std::array<double, 3> row{};
  int64_t               organ = 0;
  bool                  planar = false;
};

/** A region of the slab in voxel indices (x, y, z), start inclusive; an organ's accumulation box.
 *  A box with a zero size is empty (the organ has no attention in the slab). */
struct VoxelBox
{
  std::array<int64_t, 3> start{};
  std::array<int64_t, 3> size{};
  int64_t
  Count() const
  {
    return size[0] * size[1] * size[2];
  }
};

/** The query patches of a slab, [N, 2, P, P] float on the volume's device. Channel 0: the volume
 *  (`volume` [Z, Y, X], any real dtype) interpolated trilinearly at each pixel, the rule of
 *  ITK's LinearInterpolateImageFunction (neighbours beyond the edge are the edge voxels), in
 *  double, then windowed: clamp((v - windowLow) / (windowHigh - windowLow), 0, 1); a pixel whose
 *  continuous index lies outside [-0.5, n - 0.5) on an axis takes windowLow (so 0). Channel 1:
 *  1 where the nearest voxel (halves rounded up) is inside and set in the patch's organ's mask
 *  (`attention` [O, Z, Y, X], bool or uint8, the volume's device). `start` is the index (x, y,
 *  z) of the volume's first voxel in the frames' coordinates (a slab of a larger image): it is
 *  subtracted after rounding, as ITK does with a buffer's start index. Patches are processed in
 *  chunks, so the coordinates need O(chunk P^2) memory. std::invalid_argument for tensors of
 *  the wrong shape or device, an organ index outside 0..O-1, a patch size < 1 or an empty window. */
at::Tensor
SampleQueryPatches(const at::Tensor &              volume,
                   const at::Tensor &              attention,
                   const std::vector<PatchFrame> & frames,
                   int64_t                         patchSize,
                   double                          windowLow,
                   double                          windowHigh,
                   const std::array<int64_t, 3> &  start = { 0, 0, 0 });

/** The coarse network's vote at each voxel of a box: the coarse probability map `coarse`
 *  [Z, Y, X] (float, any device) interpolated at voxel index v of the slab by c = M v + t
 *  (`toCoarse`: 3 rows of M | t, x y z order), c clamped to the coarse grid, neighbours beyond
 *  its last voxel the last voxel (as LabelFusionFilter's BlendCoarseProbability). */
struct CoarseVote
{
  at::Tensor                           probability; // [Z, Y, X] on the coarse grid
  std::array<std::array<double, 4>, 3> toCoarse{};
  double                               scale = 1.0; // multiplies the interpolated value
};

/** Options of FusePatchScores. */
struct FusionOptions
{
  bool gaussianWeighting = true; // pixel weights exp(-d^2 / (2 sigma^2)), sigma = P / 4, toward the centre
  std::array<int64_t, 2> subdivisions{ 1, 1 }; // k_q, k_r: sub-pixels per patch pixel along columns and rows
  double                 coarseWeight = 0.0;   // w of the coarse vote (0: none)
};

/** The fusion's score of each organ over its box (float [Z_b, Y_b, X_b] on the probabilities'
 *  device, an undefined tensor for an empty box): every patch pixel, split into k_q x k_r
 *  sub-pixels (centres at q - 1/2 + (a + 1/2) / k_q, r - 1/2 + (b + 1/2) / k_r), adds its
 *  probability with weight (pixel weight) / (k_q k_r) to the voxel nearest to the sub-pixel's
 *  centre when that voxel is in its organ's box; the score is the weighted mean (0 where no
 *  weight), then, with coarseWeight w > 0 and a coarse vote for the organ, (1 - w) score + w
 *  scale x the coarse probability. `probabilities` [N, 1, P, P]; sums in float32 (their order
 *  differs from the ITK loop's: last-bit differences). `votes` is empty or has one entry per
 *  organ (an undefined probability: no vote for that organ). */
std::vector<at::Tensor>
FusePatchScores(const at::Tensor &              probabilities,
                const std::vector<PatchFrame> & frames,
                const std::vector<VoxelBox> &   boxes,
                const FusionOptions &           options,
                const std::vector<CoarseVote> & votes = {});

/** The label decision of a slab: the organ whose score lies at or above its threshold by the
 *  largest margin (computed in double), inside the organ's attention; ties go to the organ first
 *  in order; background elsewhere. Returns `labels` ([Z, Y, X] int32: organ index + 1, 0 for
 *  background) and `score` ([Z, Y, X] uint8: 255 x the winning organ's score rounded, clamped
 *  to 1..255; 0 for background), on the scores' device. The boxes are in the frames' indices;
 *  `start` is the index of the slab's first voxel (the attention's [0, 0, 0]). */
struct SlabDecision
{
  at::Tensor labels;
  at::Tensor score;
};
SlabDecision
DecideLabels(const std::vector<at::Tensor> & scores,
             const std::vector<VoxelBox> &   boxes,
             const at::Tensor &              attention,
             const std::vector<double> &     thresholds,
             const std::array<int64_t, 3> &  start = { 0, 0, 0 });

/** An organ's score as the 8-bit probability map of AGCLSegmentationFilter over the whole slab
 *  ([Z, Y, X] uint8): round(255 x clamp(score, 0, 1)) (in float, halves away from zero) inside
 *  the box where the organ's mask is set, 0 elsewhere. */
at::Tensor
QuantisedProbability(const at::Tensor &             score,
                     const VoxelBox &               box,
                     const at::Tensor &             mask,
                     const std::array<int64_t, 3> & start = { 0, 0, 0 });

} // namespace agcl

#endif
