/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModelConfig.h"

#include "agcl/ModelBundle.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <set>
#include <sstream>

namespace agcl {

namespace {
[[noreturn]] void
Fail(const std::string & key, const std::string & expected, const nlohmann::json & value)
{
  std::ostringstream os;
  os << "model config: '" << key << "' = " << value.dump() << ": expected " << expected;
  throw ModelBundleError(os.str());
}

// An integer as JSON holds it: a whole number within int64 (nlohmann would truncate 2.5 to 2,
// and converting 1e22 to an integer is undefined behaviour: found by the fuzz target).
bool
IsInt64(const nlohmann::json & value)
{
  return value.is_number_integer() &&
         (!value.is_number_unsigned() ||
          value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

// Reads json[key] into `target` when present, with a message naming the key on a type error.
template <typename T>
void
Read(const nlohmann::json & json, const char * key, T & target, const char * expected)
{
  const auto it = json.find(key);
  if (it == json.end())
  {
    return;
  }
  if constexpr (std::is_same_v<T, int64_t>)
  {
    if (!IsInt64(*it))
      Fail(key, expected, *it);
  }
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
  {
    if (!it->is_array() || !std::all_of(it->begin(), it->end(), IsInt64))
      Fail(key, expected, *it);
  }
  try
  {
    target = it->template get<T>();
  }
  catch (const nlohmann::json::exception &)
  {
    Fail(key, expected, *it);
  }
}
} // namespace

std::vector<OrganInfo>
ModelConfig::BTCVOrgans()
{
  return { { "spleen", 1 },
           { "right_kidney", 2 },
           { "left_kidney", 3 },
           { "gallbladder", 4 },
           { "esophagus", 5 },
           { "liver", 6 },
           { "stomach", 7 },
           { "aorta", 8 },
           { "inferior_vena_cava", 9 },
           { "portal_and_splenic_veins", 10 },
           { "pancreas", 11 },
           { "right_adrenal_gland", 12 } };
}

nlohmann::json
ModelConfig::ToJson() const
{
  nlohmann::json organList = nlohmann::json::array();
  for (const auto & organ : organs)
  {
    nlohmann::json entry = { { "name", organ.name }, { "label", organ.label } };
    if (organ.threshold)
      entry["threshold"] = *organ.threshold;
    organList.push_back(entry);
  }
  nlohmann::json json = {
    { "organs", organList },
    { "modalities", modalities },
    { "image", ImageJson() },
    { "patch_size", patch_size },
    { "patch_spacing_mm", patch_spacing_mm },
    { "window", { window_low, window_high } },
    { "margin_mm", margin_mm },
    { "overlap", overlap },
    { "threshold", threshold },
    { "coarse_weight", coarse_weight },
    { "coarse_vote_scaled_to_peak", coarse_vote_scaled_to_peak },
    { "encoder", { { "depth", encoder_depth }, { "width", encoder_width }, { "output_stride", output_stride } } },
    { "decoder",
      { { "channels", decoder_channels },
        { "low_level_projection", decoder_low_level_projection },
        { "rates", decoder_rates },
        { "output_stride", decoder_output_stride } } },
    { "coarse",
      { { "spacing_mm", coarse_spacing_mm },
        { "window", { coarse_window_low, coarse_window_high } },
        { "base_channels", coarse_base_channels },
        { "levels", coarse_levels },
        { "window_slices", coarse_window_slices },
        { "attention_probability", coarse_attention_probability },
        { "coordinates", coarse_coordinates } } },
    { "provenance", provenance }
  };
  if (!statistics.empty())
    json["statistics"] = statistics;
  return json;
}

ModelConfig
ModelConfig::FromJson(const nlohmann::json & json)
{
  if (!json.is_object())
  {
    Fail("config", "a JSON object", json);
  }
  ModelConfig config;
  if (const auto it = json.find("organs"); it != json.end())
  {
    if (!it->is_array())
    {
      Fail("organs", "an array of {\"name\", \"label\"} objects", *it);
    }
    config.organs.clear();
    for (const auto & entry : *it)
    {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("label") || !entry["name"].is_string() ||
          !entry["label"].is_number_integer())
      {
        Fail("organs", "objects with a string \"name\" and an integer \"label\"", entry);
      }
      OrganInfo organ{ entry["name"].get<std::string>(), entry["label"].get<int64_t>(), std::nullopt };
      if (const auto threshold = entry.find("threshold"); threshold != entry.end())
      {
        if (!threshold->is_number())
          Fail("organs[" + std::to_string(config.organs.size()) + "].threshold", "a number", *threshold);
        organ.threshold = threshold->get<double>();
      }
      config.organs.push_back(organ);
    }
  }
  Read(json, "modalities", config.modalities, "an array of names");
  if (const auto it = json.find("image"); it != json.end())
  {
    if (!it->is_object())
      Fail("image", "an object", *it);
    Read(*it, "dimensions", config.image_dimensions, "2 or 3");
    Read(*it, "channels", config.image_channels, "an integer");
    Read(*it, "mean", config.channel_mean, "an array of numbers, one per channel");
    Read(*it, "std", config.channel_std, "an array of numbers, one per channel");
  }
  Read(json, "patch_size", config.patch_size, "an integer");
  Read(json, "patch_spacing_mm", config.patch_spacing_mm, "a number");
  std::array<double, 2> window{ config.window_low, config.window_high };
  Read(json, "window", window, "[low, high] in HU");
  config.window_low = window[0];
  config.window_high = window[1];
  Read(json, "margin_mm", config.margin_mm, "a number");
  Read(json, "overlap", config.overlap, "a number");
  Read(json, "threshold", config.threshold, "a number");
  Read(json, "coarse_weight", config.coarse_weight, "a number");
  Read(json, "coarse_vote_scaled_to_peak", config.coarse_vote_scaled_to_peak, "true or false");
  if (const auto it = json.find("encoder"); it != json.end())
  {
    if (!it->is_object())
      Fail("encoder", "an object", *it);
    Read(*it, "depth", config.encoder_depth, "an integer");
    Read(*it, "width", config.encoder_width, "an integer");
    Read(*it, "output_stride", config.output_stride, "an integer");
  }
  if (const auto it = json.find("decoder"); it != json.end())
  {
    if (!it->is_object())
      Fail("decoder", "an object", *it);
    Read(*it, "channels", config.decoder_channels, "an integer");
    Read(*it, "low_level_projection", config.decoder_low_level_projection, "an integer");
    Read(*it, "rates", config.decoder_rates, "an array of integers");
    Read(*it, "output_stride", config.decoder_output_stride, "an integer");
  }
  if (const auto it = json.find("coarse"); it != json.end())
  {
    if (!it->is_object())
      Fail("coarse", "an object", *it);
    Read(*it, "spacing_mm", config.coarse_spacing_mm, "[x, y, z] in mm");
    std::array<double, 2> coarseWindow{ config.coarse_window_low, config.coarse_window_high };
    Read(*it, "window", coarseWindow, "[low, high] in HU");
    config.coarse_window_low = coarseWindow[0];
    config.coarse_window_high = coarseWindow[1];
    Read(*it, "base_channels", config.coarse_base_channels, "an integer");
    Read(*it, "levels", config.coarse_levels, "an integer");
    Read(*it, "window_slices", config.coarse_window_slices, "an integer");
    Read(*it, "attention_probability", config.coarse_attention_probability, "a probability in [0, 1)");
    Read(*it, "coordinates", config.coarse_coordinates, "true or false");
  }
  if (const auto it = json.find("provenance"); it != json.end())
  {
    config.provenance = *it;
  }
  if (const auto it = json.find("statistics"); it != json.end())
  {
    if (!it->is_object())
      Fail("statistics", "an object (the model's validation statistics)", *it);
    config.statistics = *it;
  }
  config.Validate();
  return config;
}

void
ModelConfig::Validate() const
{
  if (organs.empty() || organs.size() > 255)
  {
    Fail("organs", "1..255 organs", ToJson()["organs"]);
  }
  std::set<int64_t>     labels;
  std::set<std::string> names;
  for (const auto & organ : organs)
  {
    if (organ.label < 1 || organ.label > 255 || !labels.insert(organ.label).second || organ.name.empty() ||
        !names.insert(organ.name).second)
    {
      Fail("organs", "distinct non-empty names and distinct labels in 1..255", ToJson()["organs"]);
    }
  }
  if (modalities.empty() || std::set<std::string>(modalities.begin(), modalities.end()).size() != modalities.size())
  {
    Fail("modalities", "one or more distinct names", modalities);
  }
  if (image_dimensions != 2 && image_dimensions != 3)
  {
    Fail("image.dimensions", "2 (pictures) or 3 (volumes)", image_dimensions);
  }
  if (image_channels < 1 || image_channels > 16 || (image_dimensions == 3 && image_channels != 1))
  {
    Fail("image.channels", "1..16 for 2D images, 1 for volumes (CT)", image_channels);
  }
  if (channel_mean.size() != channel_std.size() ||
      (!channel_mean.empty() && channel_mean.size() != static_cast<size_t>(image_channels)) ||
      std::any_of(channel_mean.begin(), channel_mean.end(), [](double m) { return !std::isfinite(m); }) ||
      std::any_of(channel_std.begin(), channel_std.end(), [](double s) { return !(s > 0.0 && std::isfinite(s)); }))
  {
    Fail("image", "mean and std both absent, or one finite mean and one positive std per channel", ImageJson());
  }
  if (patch_size < 16 || patch_size > 1024 || patch_size % 16 != 0 || patch_size % output_stride != 0)
  {
    Fail("patch_size", "a multiple of 16 (and of the output stride) in 16..1024", patch_size);
  }
  if (!(patch_spacing_mm == 0.0 || (patch_spacing_mm >= 0.01 && patch_spacing_mm <= 100.0)))
  {
    Fail("patch_spacing_mm", "0 (the image's spacing) or 0.01..100 mm", patch_spacing_mm);
  }
  if (!(std::isfinite(window_low) && std::isfinite(window_high) && window_low < window_high))
  {
    Fail("window", "[low, high] with low < high", nlohmann::json{ window_low, window_high });
  }
  if (!(margin_mm >= 0.0 && margin_mm <= 500.0))
  {
    Fail("margin_mm", "0..500 mm", margin_mm);
  }
  if (!(overlap >= 0.0 && overlap <= 0.9))
  {
    Fail("overlap", "a number in 0..0.9", overlap);
  }
  if (!(threshold >= 0.0 && threshold <= 1.0))
  {
    Fail("threshold", "a probability in 0..1", threshold);
  }
  for (size_t i = 0; i < organs.size(); ++i)
  {
    if (organs[i].threshold && !(*organs[i].threshold >= 0.0 && *organs[i].threshold <= 1.0))
    {
      Fail("organs[" + std::to_string(i) + "].threshold", "a probability in 0..1", *organs[i].threshold);
    }
  }
  if (!(coarse_weight >= 0.0 && coarse_weight <= 1.0))
  {
    Fail("coarse_weight", "a weight in 0..1", coarse_weight);
  }
  if (encoder_depth != 18 && encoder_depth != 34 && encoder_depth != 50 && encoder_depth != 101)
  {
    Fail("encoder.depth", "18, 34, 50 or 101", encoder_depth);
  }
  if (encoder_width < 4 || encoder_width > 1024 || encoder_width % 4 != 0)
  {
    Fail("encoder.width", "a multiple of 4 in 4..1024", encoder_width);
  }
  if (output_stride != 8 && output_stride != 16 && output_stride != 32)
  {
    Fail("encoder.output_stride", "8, 16 or 32", output_stride);
  }
  if (decoder_channels < 1 || decoder_channels > 4096 || decoder_low_level_projection < 1 ||
      decoder_low_level_projection > 4096 || decoder_rates.size() != 3 ||
      std::any_of(decoder_rates.begin(), decoder_rates.end(), [](int64_t r) { return r < 1 || r > 256; }))
  {
    Fail(
      "decoder", "channels and low_level_projection in 1..4096 and three atrous rates in 1..256", ToJson()["decoder"]);
  }
  if (decoder_output_stride != 2 && decoder_output_stride != 4)
  {
    Fail("decoder.output_stride", "4 (DeepLabv3+) or 2", decoder_output_stride);
  }
  for (const double s : coarse_spacing_mm)
  {
    if (!(s >= 0.5 && s <= 100.0))
      Fail("coarse.spacing_mm", "three spacings in 0.5..100 mm", coarse_spacing_mm);
  }
  if (!(std::isfinite(coarse_window_low) && std::isfinite(coarse_window_high) &&
        coarse_window_low < coarse_window_high))
  {
    Fail("coarse.window", "[low, high] with low < high", nlohmann::json{ coarse_window_low, coarse_window_high });
  }
  if (coarse_base_channels < 1 || coarse_base_channels > 1024 || coarse_levels < 1 || coarse_levels > 6)
  {
    Fail("coarse", "base_channels in 1..1024 and levels in 1..6", ToJson()["coarse"]);
  }
  if (coarse_window_slices != 0 && (coarse_window_slices < 8 || coarse_window_slices > 4096))
  {
    Fail("coarse.window_slices", "0 (whole volume) or 8..4096 slices", coarse_window_slices);
  }
  if (!(coarse_attention_probability >= 0.0 && coarse_attention_probability < 1.0))
  {
    Fail("coarse.attention_probability", "a probability in [0, 1) (0 = argmax only)", coarse_attention_probability);
  }
  if (const uint64_t parameters = MinimumParameterCount(); parameters > kMaxParameters)
  {
    Fail("encoder/decoder/coarse sizes",
         "networks of at most " + std::to_string(kMaxParameters) + " parameters (these sizes need at least " +
           std::to_string(parameters) + ")",
         nlohmann::json{
           { "encoder", ToJson()["encoder"] }, { "decoder", ToJson()["decoder"] }, { "coarse", ToJson()["coarse"] } });
  }
}

uint64_t
ModelConfig::MinimumParameterCount() const
{
  // Encoder: the 3x3 convolution of every residual block (planes x planes x 9; a bottleneck
  // block's 1x1 expansion adds planes x 4 planes); the fields' ranges keep this far from
  // overflowing 64 bits.
  const bool                    bottleneck = encoder_depth >= 50;
  const std::array<uint64_t, 4> blocks = encoder_depth == 18    ? std::array<uint64_t, 4>{ 2, 2, 2, 2 }
                                         : encoder_depth == 101 ? std::array<uint64_t, 4>{ 3, 4, 23, 3 }
                                                                : std::array<uint64_t, 4>{ 3, 4, 6, 3 };
  uint64_t                      count = 0;
  for (int k = 0; k < 4; ++k)
  {
    const uint64_t planes = static_cast<uint64_t>(std::max<int64_t>(encoder_width, 1)) << k;
    count += blocks[k] * (bottleneck ? 13 : 9) * planes * planes;
  }
  // Decoder: the 3x3 refinement of (channels + projection) into channels.
  const uint64_t c = static_cast<uint64_t>(std::max<int64_t>(decoder_channels, 1));
  const uint64_t p = static_cast<uint64_t>(std::max<int64_t>(decoder_low_level_projection, 1));
  count += 9 * c * (c + p);
  // Coarse network: the deepest level's second 3x3x3 convolution (1x3x3 when planar).
  const uint64_t deepest = static_cast<uint64_t>(std::max<int64_t>(coarse_base_channels, 1))
                           << std::clamp<int64_t>(coarse_levels - 1, 0, 5);
  count += (image_dimensions == 2 ? 9 : 27) * deepest * deepest;
  return count;
}

nlohmann::json
ModelConfig::ImageJson() const
{
  nlohmann::json image = { { "dimensions", image_dimensions }, { "channels", image_channels } };
  if (!channel_mean.empty() || !channel_std.empty())
  {
    image["mean"] = channel_mean;
    image["std"] = channel_std;
  }
  return image;
}

std::vector<int64_t>
ModelConfig::OrganLabels() const
{
  std::vector<int64_t> labels;
  for (const auto & organ : organs)
  {
    labels.push_back(organ.label);
  }
  return labels;
}

double
ModelConfig::OrganThreshold(size_t index) const
{
  return organs.at(index).threshold.value_or(threshold);
}

int64_t
ModelConfig::OrganIndex(int64_t label) const
{
  for (size_t i = 0; i < organs.size(); ++i)
  {
    if (organs[i].label == label)
      return static_cast<int64_t>(i);
  }
  return -1;
}

} // namespace agcl
