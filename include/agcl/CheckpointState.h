/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_CheckpointState_h
#define agcl_CheckpointState_h

// Where a training checkpoint stands: the "trainer" object of its bundle's config, read and
// checked before a resume uses any of it. No LibTorch.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace agcl {

struct CheckpointState
{
  int            stage = 0;        ///< 0, 1, 2, or 3 (every stage done)
  int64_t        step = 0;         ///< steps done in `stage`
  double         best_dice = -1.0; ///< best validation Dice so far (-1: none yet)
  nlohmann::json options;          ///< the options that decide the result (an object)
  nlohmann::json subjects;         ///< the training data's fingerprint (an array; null if absent)
  int            world_size = 1;   ///< the processes of the job that wrote it (1 if absent)
};

/** Reads the "trainer" object of a checkpoint's config. Refused with std::invalid_argument naming
 *  `path` and the field: no "trainer" object, a stage other than 0..3, a step outside 0..2^40, a
 *  best Dice that is not -1 or in 0..1, options that are not an object, subjects that are not an
 *  array (a checkpoint edited by hand or damaged would otherwise resume at a wrong place or
 *  skip every stage silently). */
CheckpointState
ReadCheckpointState(const nlohmann::json & config, const std::string & path);

} // namespace agcl

#endif
