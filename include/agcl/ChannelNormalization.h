/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ChannelNormalization_h
#define agcl_ChannelNormalization_h

#include "agcl/ModelConfig.h"

#include <ATen/core/Tensor.h>

namespace agcl {

/** Which of the configuration's windows a channel normalisation uses when it has no per-channel
 *  statistics: the query patches' `window` or the coarse network's `coarse.window`. */
enum class NormalizationWindow
{
  Patches,
  Coarse
};

/** The model's intensity normalisation of an image with its channels first, [C, ...] (any
 *  floating or integer dtype, any device; C = config.image_channels): with per-channel statistics
 *  (`image.mean`, `image.std`, photographs) (x - mean[c]) / std[c]; without, every channel
 *  clipped to the window and scaled to 0..1, clamp((x - low) / (high - low), 0, 1) (a CT window,
 *  or [0, 255] for 8-bit photographs). Returns float32 on the image's device.
 *  std::invalid_argument when the image has no channel axis of size C. */
at::Tensor
NormalizeChannels(const at::Tensor & image, const ModelConfig & config, NormalizationWindow window);

} // namespace agcl

#endif
