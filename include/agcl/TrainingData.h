/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_TrainingData_h
#define agcl_TrainingData_h

#include "agcl/ModelConfig.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace agcl {

class AGCLModel;

/** One subject of a training cohort (a manifest row). */
struct TrainingSubject
{
  std::string name;
  /** Index into ModelConfig::modalities. */
  int64_t modality = 0;
  /** "train", "val" or "test". */
  std::string split;
  /** Whether a voxel label map exists (unlabelled training subjects serve stage 1 only). */
  bool labelled = false;
};

/** A subject's CT on the coarse network's grid (stage 0). */
struct CoarseSample
{
  /** [D, H, W] float32, window-normalised to 0..1 (D = the slowest, z index axis); or
   *  [C, D, H, W] with C = ModelConfig::image_channels (2D pictures: D = 1, normalised per
   *  channel as the configuration says). */
  at::Tensor image;
  /** [D, H, W] int64: 0 background, i = organ i-1 of the config, -1 ignored by the losses
   *  (void, e.g. PASCAL VOC's 255). */
  at::Tensor classes;
};

/** Query patches of a subject (stages 1 and 2), on the CPU. */
struct PatchSet
{
  /** [n, C + 1, P, P] float32: the normalised image's C channels (C = ModelConfig::
   *  image_channels; 1 for CT: window-normalised), then the attention 0/1. */
  at::Tensor image;
  /** [n, P, P] int64: 1 where the patch's organ is (all 0 for an unlabelled subject); -1
   *  where the pixel is ignored by the losses and the validation (void, outside a picture). */
  at::Tensor mask;
  /** [n] int64: organ index (0..O-1, the config's order). */
  at::Tensor organ;
  /** [n] int64: modality index. */
  at::Tensor modality;

  int64_t
  Size() const
  {
    return image.defined() ? image.size(0) : 0;
  }
};

/** Where the attention maps of training patches come from. */
enum class AttentionSource
{
  /** The coarse network's prediction, dilated by the margin (what inference sees). */
  Coarse,
  /** The ground-truth organs, dilated by the margin. */
  Truth
};

/** The cohort as the trainer sees it. The core knows nothing of image files: the ITK layer's
 *  itk::ManifestTrainingData reads a manifest with ITK's IO and implements this with the same
 *  resampling, attention and patch sampling as the inference filters, so that training sees
 *  what inference sees. Tests may implement it with synthetic tensors. Errors: any exception;
 *  the trainer lets it through. */
class TrainingData
{
public:
  virtual ~TrainingData() = default;

  virtual std::vector<TrainingSubject>
  Subjects() const = 0;

  /** Subject `index`'s CT and labels on the coarse grid of `config` (labelled subjects only). */
  virtual CoarseSample
  Coarse(size_t index, const ModelConfig & config) = 0;

  /** Up to `patchesPerOrgan` query patches per organ of subject `index`, centres drawn (by
   *  `seed`) inside each organ's attention map; an organ without attention gives none. With
   *  AttentionSource::Coarse the attention comes from `model`'s coarse network on `device`. */
  virtual PatchSet
  Patches(size_t              index,
          AttentionSource     source,
          AGCLModel &         model,
          const c10::Device & device,
          int64_t             patchesPerOrgan,
          uint64_t            seed) = 0;
};

} // namespace agcl

#endif
