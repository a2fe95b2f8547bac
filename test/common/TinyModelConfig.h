/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_test_TinyModelConfig_h
#define agcl_test_TinyModelConfig_h

#include "agcl/ModelConfig.h"

namespace agcl::test {

/** The model configuration of the tests: 4 organs (labels 1, 2, 6, 8), 32-pixel patches,
 *  a width-8 ResNet-18, a 16-channel decoder and a 3-level, 4-channel coarse network at 8 mm:
 *  small enough that an untrained model runs on a phantom in about a second. */
inline ModelConfig
TinyModelConfig()
{
  ModelConfig config;
  config.organs = { { "spleen", 1 }, { "right_kidney", 2 }, { "liver", 6 }, { "aorta", 8 } };
  config.patch_size = 32;
  config.encoder_width = 8;
  config.decoder_channels = 16;
  config.decoder_low_level_projection = 8;
  config.coarse_base_channels = 4;
  config.coarse_levels = 3;
  config.coarse_spacing_mm = { 8.0, 8.0, 8.0 };
  return config;
}

/** The tests' model for 2D RGB pictures: TinyModelConfig's networks for two classes ("disc" 1,
 *  "box" 2) of one source ("voc"), 3 channels, 16-pixel patches, the coarse network at 4 mm.
 *  Each test sets what it needs beyond that (channel statistics, margin, patch spacing). */
inline ModelConfig
TinyPictureConfig()
{
  ModelConfig config = TinyModelConfig();
  config.organs = { { "disc", 1 }, { "box", 2 } };
  config.modalities = { "voc" };
  config.image_dimensions = 2;
  config.image_channels = 3;
  config.patch_size = 16;
  config.coarse_spacing_mm = { 4.0, 4.0, 4.0 };
  return config;
}

} // namespace agcl::test

#endif
