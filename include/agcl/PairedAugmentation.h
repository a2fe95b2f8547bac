/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_PairedAugmentation_h
#define agcl_PairedAugmentation_h

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

namespace agcl {

struct PairedAugmentationOptions
{
  /** Crop area as a fraction of the patch: our reading of the paper's "random scaling
   *  (width: 0.3, length: 0.7)", as in the first author's public code (MASILab/DCC_CL). */
  TORCH_ARG(double, min_area) = 0.3;
  TORCH_ARG(double, max_area) = 0.7;
  /** Crop aspect ratio (width / height), drawn log-uniformly. */
  TORCH_ARG(double, min_aspect) = 3.0 / 4.0;
  TORCH_ARG(double, max_aspect) = 4.0 / 3.0;
  /** Rotation drawn uniformly in [-max, +max] degrees (paper: -30..+30). */
  TORCH_ARG(double, max_rotation_degrees) = 30.0;
  /** Channels [0, image_channels) are images (bilinear); the rest are binary attention maps,
   *  resampled bilinearly and re-thresholded at 0.5 so they stay binary. */
  TORCH_ARG(int64_t, image_channels) = 1;
  /** Refuse NaN/infinite input (one device read-back per call; see ConditionalContrastiveLossOptions). */
  TORCH_ARG(bool, check_finite) = true;
};

/** Pairwise augmentation P_Aug of paper §III-A: two views per patch, each a random resized
 *  crop + rotation, applied with the SAME geometric transform to all channels of that view
 *  (image and attention stay aligned), as one batched affine_grid/grid_sample on the batch's
 *  device. Regions rotated in from outside the patch are zero.
 *
 *  Geometry of one view, in grid_sample's normalised coordinates (align_corners = false): the
 *  output point q maps to the input point R(angle) * diag(cw, ch) * q + (cx, cy), with
 *  cw = sqrt(area * aspect), ch = sqrt(area / aspect) (half-extents of the crop, fractions of the
 *  patch) and the crop centre drawn so that the unrotated crop lies inside the patch.
 *
 *  Random numbers come from a CPU generator, so a seed gives the same views on any device.
 */
class PairedAugmentation
{
public:
  explicit PairedAugmentation(PairedAugmentationOptions options = {});

  /** [N, C, H, W] -> [2N, C, H, W]: rows 0..N-1 are view 1 of patches 0..N-1, rows N..2N-1 view 2
   *  (the order ContrastiveLabels expects). */
  at::Tensor
  Forward(const at::Tensor & batch, at::Generator & generator) const;
  at::Tensor
  Forward(const at::Tensor & batch, uint64_t seed) const;

  /** Draws n views' parameters: [n, 5] float64 on the CPU, columns
   *  (area fraction, aspect ratio, angle in degrees, centre x, centre y). */
  at::Tensor
  SampleParameters(int64_t n, at::Generator & generator) const;

  /** Parameters [n, 5] -> affine matrices [n, 2, 3] (float64, CPU) for affine_grid. */
  static at::Tensor
  AffineMatrices(const at::Tensor & parameters);

  /** Applies one set of parameters per patch: [n, C, H, W] and [n, 5] -> [n, C, H, W]. */
  at::Tensor
  Apply(const at::Tensor & batch, const at::Tensor & parameters) const;

  const PairedAugmentationOptions &
  options() const
  {
    return m_Options;
  }

private:
  PairedAugmentationOptions m_Options;
};

} // namespace agcl

#endif
