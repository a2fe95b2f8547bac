/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/CheckpointState.h"

#include <cmath>
#include <stdexcept>

namespace agcl {

CheckpointState
ReadCheckpointState(const nlohmann::json & config, const std::string & path)
{
  auto fail = [&](const std::string & what) {
    throw std::invalid_argument("checkpoint '" + path + "': " + what + " (not a checkpoint this trainer wrote?)");
  };
  if (!config.is_object() || !config.contains("trainer") || !config.at("trainer").is_object())
    fail("no 'trainer' object in its config");
  const nlohmann::json & trainer = config.at("trainer");
  auto integer = [&](const char * key, int64_t low, int64_t high) {
    if (!trainer.contains(key) || !trainer.at(key).is_number_integer())
      fail(std::string("'trainer.") + key + "' is missing or not an integer");
    const nlohmann::json & v = trainer.at(key);
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(high)
                               : (v.get<int64_t>() < low || v.get<int64_t>() > high))
      fail(std::string("'trainer.") + key + "' = " + v.dump() + ": expected " + std::to_string(low) + ".." +
           std::to_string(high));
    return v.get<int64_t>();
  };
  CheckpointState state;
  state.stage = static_cast<int>(integer("stage", 0, 3));
  state.step = integer("step", 0, int64_t{ 1 } << 40);
  if (!trainer.contains("best_dice") || !trainer.at("best_dice").is_number())
    fail("'trainer.best_dice' is missing or not a number");
  state.best_dice = trainer.at("best_dice").get<double>();
  if (!(state.best_dice == -1.0 || (state.best_dice >= 0.0 && state.best_dice <= 1.0 + 1e-9)))
    fail("'trainer.best_dice' = " + trainer.at("best_dice").dump() + ": expected -1 or 0..1");
  if (!trainer.contains("options") || !trainer.at("options").is_object())
    fail("'trainer.options' is missing or not an object");
  state.options = trainer.at("options");
  // The job's number of processes (distributed training); absent: one (older checkpoints).
  state.world_size = trainer.contains("world_size") ? static_cast<int>(integer("world_size", 1, 1 << 20)) : 1;
  state.subjects = trainer.value("subjects", nlohmann::json());
  if (!state.subjects.is_null() && !state.subjects.is_array())
    fail("'trainer.subjects' is not an array");
  return state;
}

} // namespace agcl
