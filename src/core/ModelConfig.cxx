/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModelConfig.h"

#include "agcl/ModelBundle.h"

#include <cmath>
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
  try
  {
    target = it->template get<T>();
  }
  catch (const nlohmann::json::exception &)
  {
    Fail(key, expected, *it);
  }
}

bool
Positive(double value)
{
  return std::isfinite(value) && value > 0.0;
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
    organList.push_back({ { "name", organ.name }, { "label", organ.label } });
  }
  return { { "organs", organList },
           { "modalities", modalities },
           { "patch_size", patch_size },
           { "patch_spacing_mm", patch_spacing_mm },
           { "window", { window_low, window_high } },
           { "margin_mm", margin_mm },
           { "overlap", overlap },
           { "threshold", threshold },
           { "encoder",
             { { "depth", encoder_depth }, { "width", encoder_width }, { "output_stride", output_stride } } },
           { "decoder",
             { { "channels", decoder_channels },
               { "low_level_projection", decoder_low_level_projection },
               { "rates", decoder_rates } } },
           { "coarse",
             { { "spacing_mm", coarse_spacing_mm },
               { "window", { coarse_window_low, coarse_window_high } },
               { "base_channels", coarse_base_channels },
               { "levels", coarse_levels },
               { "window_slices", coarse_window_slices },
               { "attention_probability", coarse_attention_probability },
               { "coordinates", coarse_coordinates } } },
           { "provenance", provenance } };
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
      config.organs.push_back({ entry["name"].get<std::string>(), entry["label"].get<int64_t>() });
    }
  }
  Read(json, "modalities", config.modalities, "an array of names");
  Read(json, "patch_size", config.patch_size, "an integer");
  Read(json, "patch_spacing_mm", config.patch_spacing_mm, "a number");
  std::array<double, 2> window{ config.window_low, config.window_high };
  Read(json, "window", window, "[low, high] in HU");
  config.window_low = window[0];
  config.window_high = window[1];
  Read(json, "margin_mm", config.margin_mm, "a number");
  Read(json, "overlap", config.overlap, "a number");
  Read(json, "threshold", config.threshold, "a number");
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
  if (patch_size < 16 || patch_size > 1024 || patch_size % 16 != 0 || patch_size % output_stride != 0)
  {
    Fail("patch_size", "a multiple of 16 (and of the output stride) in 16..1024", patch_size);
  }
  if (!(std::isfinite(patch_spacing_mm) && patch_spacing_mm >= 0.0))
  {
    Fail("patch_spacing_mm", "a number >= 0 (0 = the image's spacing)", patch_spacing_mm);
  }
  if (!(std::isfinite(window_low) && std::isfinite(window_high) && window_low < window_high))
  {
    Fail("window", "[low, high] with low < high", nlohmann::json{ window_low, window_high });
  }
  if (!(std::isfinite(margin_mm) && margin_mm >= 0.0))
  {
    Fail("margin_mm", "a number >= 0", margin_mm);
  }
  if (!(overlap >= 0.0 && overlap <= 0.9))
  {
    Fail("overlap", "a number in 0..0.9", overlap);
  }
  if (!(threshold >= 0.0 && threshold <= 1.0))
  {
    Fail("threshold", "a probability in 0..1", threshold);
  }
  if (encoder_depth != 18 && encoder_depth != 34 && encoder_depth != 50 && encoder_depth != 101)
  {
    Fail("encoder.depth", "18, 34, 50 or 101", encoder_depth);
  }
  if (encoder_width < 1 || encoder_width > 1024)
  {
    Fail("encoder.width", "1..1024", encoder_width);
  }
  if (output_stride != 8 && output_stride != 16 && output_stride != 32)
  {
    Fail("encoder.output_stride", "8, 16 or 32", output_stride);
  }
  if (decoder_channels < 1 || decoder_low_level_projection < 1 || decoder_rates.size() != 3)
  {
    Fail("decoder", "positive channels and three atrous rates", ToJson()["decoder"]);
  }
  for (const double s : coarse_spacing_mm)
  {
    if (!Positive(s))
      Fail("coarse.spacing_mm", "three positive spacings in mm", coarse_spacing_mm);
  }
  if (!(std::isfinite(coarse_window_low) && std::isfinite(coarse_window_high) &&
        coarse_window_low < coarse_window_high))
  {
    Fail("coarse.window", "[low, high] with low < high", nlohmann::json{ coarse_window_low, coarse_window_high });
  }
  if (coarse_base_channels < 1 || coarse_levels < 1 || coarse_levels > 6)
  {
    Fail("coarse", "base_channels >= 1 and levels in 1..6", ToJson()["coarse"]);
  }
  if (coarse_window_slices != 0 && coarse_window_slices < 8)
  {
    Fail("coarse.window_slices", "0 (whole volume) or at least 8 slices", coarse_window_slices);
  }
  if (!(coarse_attention_probability >= 0.0 && coarse_attention_probability < 1.0))
  {
    Fail("coarse.attention_probability", "a probability in [0, 1) (0 = argmax only)", coarse_attention_probability);
  }
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
