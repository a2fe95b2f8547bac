/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The trainer's options as JSON (settings.json, checkpoints, provenance), the step budgets of
// the auto rule and the convergence check.
#include "TrainingRun.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <type_traits>

namespace agcl {
namespace {

// One row per option: its name, its JSON form and how it is read back.
struct OptionField
{
  const char *                                                      name;
  std::function<nlohmann::json(const AGCLTrainerOptions &)>         get;
  std::function<void(AGCLTrainerOptions &, const nlohmann::json &)> set;
};

// A JSON value as T, strictly: an integer option takes integers only (nlohmann would truncate
// 2.5 to 2 and wrap -1 into a huge unsigned value).
template <typename T>
T
ReadOption(const nlohmann::json & v)
{
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
  {
    if (!v.is_number_integer() || (std::is_unsigned_v<T> && v.get<int64_t>() < 0 && !v.is_number_unsigned()))
      throw std::invalid_argument(std::is_unsigned_v<T> ? "expected an integer >= 0" : "expected an integer");
  }
  return v.get<T>();
}

AttentionSource
ParseAttention(const std::string & text)
{
  if (text != "coarse" && text != "truth")
    throw std::invalid_argument("'" + text + "': expected coarse or truth");
  return text == "coarse" ? AttentionSource::Coarse : AttentionSource::Truth;
}

// clang-format off
#define AGCL_PLAIN_OPTION(name)                                                                  \
  OptionField{ #name,                                                                            \
               [](const AGCLTrainerOptions & o) { return nlohmann::json(o.name()); },            \
               [](AGCLTrainerOptions & o, const nlohmann::json & v) {                            \
                 o.name(ReadOption<std::decay_t<decltype(o.name())>>(v));                        \
               } }
// clang-format on

const std::vector<OptionField> &
OptionFields()
{
  static const std::vector<OptionField> fields = {
    AGCL_PLAIN_OPTION(stage),
    { "mode",
      [](const AGCLTrainerOptions & o) { return nlohmann::json(ToString(o.mode())); },
      [](AGCLTrainerOptions & o, const nlohmann::json & v) { SetPretrainingMode(o, v.get<std::string>()); } },
    AGCL_PLAIN_OPTION(temperature),
    AGCL_PLAIN_OPTION(projection_features),
    { "attention",
      [](const AGCLTrainerOptions & o) {
        return nlohmann::json(o.attention() == AttentionSource::Coarse ? "coarse" : "truth");
      },
      [](AGCLTrainerOptions & o, const nlohmann::json & v) { o.attention(ParseAttention(v.get<std::string>())); } },
    AGCL_PLAIN_OPTION(label_fraction),
    AGCL_PLAIN_OPTION(finetune_encoder),
    AGCL_PLAIN_OPTION(pretraining_modalities),
    AGCL_PLAIN_OPTION(init_from),
    AGCL_PLAIN_OPTION(resume),
    AGCL_PLAIN_OPTION(seed),
    AGCL_PLAIN_OPTION(device),
    AGCL_PLAIN_OPTION(coarse_steps),
    AGCL_PLAIN_OPTION(coarse_batch_size),
    AGCL_PLAIN_OPTION(coarse_learning_rate),
    AGCL_PLAIN_OPTION(coarse_class_weights),
    AGCL_PLAIN_OPTION(pretraining_steps),
    AGCL_PLAIN_OPTION(pretraining_batch_size),
    AGCL_PLAIN_OPTION(pretraining_learning_rate),
    AGCL_PLAIN_OPTION(decoder_steps),
    AGCL_PLAIN_OPTION(decoder_batch_size),
    AGCL_PLAIN_OPTION(decoder_learning_rate),
    AGCL_PLAIN_OPTION(encoder_learning_rate),
    AGCL_PLAIN_OPTION(decoder_cross_entropy),
    AGCL_PLAIN_OPTION(decoder_dice),
    AGCL_PLAIN_OPTION(warmup_fraction),
    AGCL_PLAIN_OPTION(weight_decay),
    AGCL_PLAIN_OPTION(patches_per_organ),
    AGCL_PLAIN_OPTION(checkpoint_every),
    AGCL_PLAIN_OPTION(validate_every),
    AGCL_PLAIN_OPTION(log_every),
    AGCL_PLAIN_OPTION(prefetch),
    AGCL_PLAIN_OPTION(show_progress),
  };
  return fields;
}
#undef AGCL_PLAIN_OPTION

} // namespace

// The auto rule for a stage's steps: `passes` passes over the stage's inputs at `batch` per
// step, clamped to [minimum, cap] (a small cohort still gets enough steps, a big one a bound).
namespace {
struct AutoRule
{
  double  passes;
  int64_t minimum, cap;
};
// Stage 0: 40 passes over the labelled volumes; stages 1 and 2: 8 passes over the patch pool
// (patches_per_organ per organ and volume). Measured on the phantom study cohort in
// Documentation/experiments.md (stage 2's validation Dice still rose after 2 passes; stages 1
// and 2 cost ~1/12 of stage 0's time per pass there); CheckConvergence says when a budget was
// not enough.
constexpr AutoRule kAutoCoarse{ 40.0, 400, 1500 };
constexpr AutoRule kAutoPretraining{ 8.0, 200, 6000 };
constexpr AutoRule kAutoDecoder{ 8.0, 200, 6000 };

} // namespace

int64_t
AutoSteps(int stage, double inputs, int64_t batch)
{
  if (stage < 0 || stage > 2)
    throw std::invalid_argument("AutoSteps: stage " + std::to_string(stage) + ": expected 0, 1 or 2");
  const AutoRule & rule = stage == 0 ? kAutoCoarse : stage == 1 ? kAutoPretraining : kAutoDecoder;
  const double     steps = std::ceil(rule.passes * inputs / static_cast<double>(std::max<int64_t>(1, batch)));
  return std::clamp(static_cast<int64_t>(steps), rule.minimum, rule.cap);
}

Convergence
CheckConvergence(const std::vector<double> & losses)
{
  Convergence  c;
  const size_t n = losses.size(), tenth = n / 10;
  if (tenth < 5)
    return c; // too few steps in this run to tell
  auto meanOf = [&](size_t first) {
    double sum = 0.0;
    for (size_t i = first; i < first + tenth; ++i)
      sum += losses[i];
    return sum / static_cast<double>(tenth);
  };
  c.first = meanOf(0);
  c.middle = meanOf(n / 2 - tenth / 2);
  c.last = meanOf(n - tenth);
  c.checked = true;
  // With a schedule that decays the learning rate to 0, the last steps flatten whatever the
  // state of the model; what tells an undertrained stage is how much of its whole improvement
  // still came in the second half.
  const double total = c.first - c.last;
  c.converged = !(total > 0.05 * std::abs(c.first) && c.middle - c.last > 0.2 * total);
  return c;
}

void
SetPretrainingMode(AGCLTrainerOptions & options, const std::string & name)
{
  options.mode(ParsePretrainingMode(name));
  if (IsEndToEndAlias(name))
    options.finetune_encoder(true); // the earlier names of the model trained end to end from scratch
}

nlohmann::json
OptionsToJson(const AGCLTrainerOptions & options)
{
  nlohmann::json out = nlohmann::json::object();
  for (const auto & field : OptionFields())
    out[field.name] = field.get(options);
  return out;
}

AGCLTrainerOptions
OptionsFromJson(const nlohmann::json & json, AGCLTrainerOptions base)
{
  if (!json.is_object())
    throw std::invalid_argument("trainer options: expected a JSON object of option names, got " + json.dump());
  for (const auto & [key, value] : json.items())
  {
    const auto & fields = OptionFields();
    const auto   field =
      std::find_if(fields.begin(), fields.end(), [&key = key](const OptionField & f) { return key == f.name; });
    if (field == fields.end())
      throw std::invalid_argument("trainer options: unknown option '" + key + "'");
    try
    {
      field->set(base, value);
    }
    catch (const nlohmann::json::exception &)
    {
      throw std::invalid_argument("trainer options: '" + key + "' = " + value.dump() + ": expected a " +
                                  field->get(AGCLTrainerOptions{}).type_name() + " like " +
                                  field->get(AGCLTrainerOptions{}).dump());
    }
    catch (const std::invalid_argument & e)
    {
      throw std::invalid_argument("trainer options: '" + key + "' = " + value.dump() + ": " + e.what());
    }
  }
  const auto mode = json.find("mode"), finetune = json.find("finetune_encoder");
  if (mode != json.end() && finetune != json.end() && IsEndToEndAlias(mode->get<std::string>()) && *finetune == false)
    throw std::invalid_argument("trainer options: 'mode' = " + mode->dump() +
                                " is a randomly initialised encoder trained end to end, which 'finetune_encoder' = "
                                "false contradicts; mode 'random' keeps the random encoder frozen");
  return base;
}

namespace detail {

nlohmann::json
Fingerprint(const AGCLTrainerOptions & o)
{
  nlohmann::json fingerprint = OptionsToJson(o);
  for (const char * mayChange :
       { "stage", "resume", "device", "checkpoint_every", "log_every", "prefetch", "show_progress" })
    fingerprint.erase(mayChange);
  return fingerprint;
}

} // namespace detail
} // namespace agcl
