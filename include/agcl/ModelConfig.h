/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ModelConfig_h
#define agcl_ModelConfig_h

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agcl {

/** One organ of a model: its name and the value it has in label maps. */
struct OrganInfo
{
  std::string name;
  int64_t     label = 0;
  /** The organ's own fusion threshold (0..1); unset: the model's `threshold`. */
  std::optional<double> threshold;
};

/** The architecture and inference settings of an AGCL model: the "config" object of a model
 *  bundle (Documentation/model-format.md lists the keys). The defaults are the CPU-sized model
 *  (ResNet-18 at width 16, 64x64 patches) and BTCV's 12 organs.
 *
 *  FromJson reads every key that is present (missing keys keep the defaults, so older files
 *  stay readable) and Validate checks the whole configuration; both throw ModelBundleError
 *  naming the key and what was expected. */
struct ModelConfig
{
  std::vector<OrganInfo>   organs = BTCVOrgans();
  std::vector<std::string> modalities{ "contrast", "noncontrast" };

  /** The images the model reads (issue 19): 3 = CT volumes (the default), 2 = 2D pictures, for
   *  which the coarse network is planar (CoarseSegmentationNetOptions::planar). */
  int64_t image_dimensions = 3;
  /** Components per pixel: 1 for CT, 3 for RGB photographs. The coarse network sees these, the
   *  encoder these and one attention channel. */
  int64_t image_channels = 1;
  /** Per-channel normalisation (x - mean[c]) / std[c] of photographs (e.g. ImageNet's statistics
   *  in 0..255 units); empty: `window` (and `coarse.window`) map every channel to 0..1, a CT
   *  window in HU or [0, 255] for 8-bit photographs. */
  std::vector<double> channel_mean, channel_std;

  // Query patches (paper §III-A): size P (multiple of 16), pixel spacing in mm (0 = the
  // image's finest in-plane spacing), CT window in HU mapped to 0..1.
  int64_t patch_size = 64;
  double  patch_spacing_mm = 0.0;
  double  window_low = -175.0;
  double  window_high = 275.0;

  // Attention and fusion.
  double margin_mm = 10.0;
  double overlap = 0.25;
  double threshold = 0.5;
  // An organ's own threshold (OrganInfo::threshold) replaces `threshold` for it, and the organs
  // then compete by how far their score lies above their own threshold (OrganThreshold).
  /** The coarse network's vote in the fusion: a voxel's score for organ o is
   *  (1 - w) x the fine stage's averaged probability + w x the coarse network's softmax
   *  probability of o (linearly interpolated from the coarse grid); the highest score at or above
   *  `threshold`, inside the organ's attention, wins. 0 = the fine stage alone (the paper's
   *  fusion; models saved before this key existed). */
  double coarse_weight = 0.0;
  /** The coarse vote scaled to each organ's peak: before the blend, each organ's coarse
   *  probability is divided by its largest value in the volume (when that is > 0), so that an
   *  organ the coarse network finds but never ranks with confidence (e.g. a small gland after
   *  training on few labels) still gets a full vote where it is most likely, instead of being
   *  voted down everywhere. false = the probabilities as they are (models saved before the key). */
  bool coarse_vote_scaled_to_peak = false;

  // Encoder (ResNetEncoderOptions) and decoder (ASPPDecoderOptions).
  int64_t              encoder_depth = 18;
  int64_t              encoder_width = 16;
  int64_t              output_stride = 16;
  int64_t              decoder_channels = 64;
  int64_t              decoder_low_level_projection = 16;
  std::vector<int64_t> decoder_rates{ 6, 12, 18 };
  /** Stride of the decoder's logits before the final upsampling: 4 (DeepLabv3+, the paper; models
   *  saved before this key) or 2 (one more decoder stage on the encoder's stem features). */
  int64_t decoder_output_stride = 4;

  // Coarse 3D network (CoarseSegmentationNetOptions): voxel spacing it runs at, its window.
  std::array<double, 3> coarse_spacing_mm{ 4.0, 4.0, 4.0 };
  double                coarse_window_low = -175.0;
  double                coarse_window_high = 275.0;
  int64_t               coarse_base_channels = 8;
  int64_t               coarse_levels = 4;
  /** The coarse network runs on windows of at most this many coarse slices along the volume's
   *  slowest (z index) axis, overlapping by a quarter window on each side, so that its memory
   *  does not grow with the scan length (0 = the whole volume at once). 32 slices at 4 mm =
   *  128 mm. Training should show the network windows of the same extent. */
  int64_t coarse_window_slices = 32;
  /** Attention seeds beyond the argmax: with p > 0 an organ's attention also grows from every
   *  coarse voxel where its softmax probability is at least p, so that an organ the network
   *  sees but ranks second is not cut away (the fine stage decides inside the attention).
   *  0 = the argmax region only (the paper's reading; models saved before this key existed). */
  double coarse_attention_probability = 0.0;
  /** The coarse network sees each voxel's in-plane position as two more channels
   *  (CoarseSegmentationNetOptions::coordinates). Off in models saved before this key. */
  bool coarse_coordinates = false;

  /** Free-form training provenance (data, settings, tool version, date). */
  nlohmann::json provenance = nlohmann::json::object();
  /** The model's own predictions on validation volumes, for plausibility warnings at
   *  inference (organ volume ranges, the windowed intensity histogram): written by `agcl
   *  calibrate` (and `agcl train`), read by itkAGCLModelStatistics.h. Empty: none recorded. */
  nlohmann::json statistics = nlohmann::json::object();

  static std::vector<OrganInfo>
  BTCVOrgans();

  nlohmann::json
  ToJson() const;
  static ModelConfig
  FromJson(const nlohmann::json & json);
  /** Checks every field against its documented range (Documentation/model-format.md): besides
   *  the shapes the networks need, physical ranges that keep the tiling, fusion and resampling
   *  loops bounded (patch spacing 0 or 0.01..100 mm, margin 0..500 mm, coarse spacing
   *  0.5..100 mm) and sizes that keep the networks below kMaxParameters (by
   *  MinimumParameterCount, before anything is allocated). ModelBundleError names the field. */
  void
  Validate() const;

  /** A lower bound on the parameters of the three networks this configuration declares (their
   *  largest convolutions only), computed without building them; tested against the built
   *  networks' counts. AGCLModel's loader refuses a bundle whose weights are fewer bytes. */
  uint64_t
                            MinimumParameterCount() const;
  static constexpr uint64_t kMaxParameters = uint64_t{ 1 } << 31;

  /** The fusion threshold of organ `index`: its own, or `threshold`. */
  double
  OrganThreshold(size_t index) const;

  /** The "image" object of the JSON form (dimensions, channels, and mean/std when set). */
  nlohmann::json
  ImageJson() const;

  /** The organ labels in order; -1 if `label` is not an organ, else its index. */
  std::vector<int64_t>
  OrganLabels() const;
  int64_t
  OrganIndex(int64_t label) const;
};

} // namespace agcl

#endif
