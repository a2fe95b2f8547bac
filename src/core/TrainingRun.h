/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_TrainingRun_h
#define agcl_TrainingRun_h

// What one AGCLTrainer::Run carries between its parts (private header of the core): the
// subjects of each stage, where the run stands (stage, step), the log, the checkpoints and the
// step loop every stage shares. AGCLTrainer.cxx sets a run up (options, lock, resume, subjects,
// step budgets) and writes the final bundle; each stage is a function in a file named after it
// (CoarseStage.cxx, PretrainingStage.cxx, DecoderStage.cxx); the shared parts are in
// TrainingRun.cxx.

#include "agcl/AGCLTrainer.h"
#include "agcl/AdamOptimizer.h"
#include "agcl/AGCLModel.h"
#include "agcl/Distributed.h"
#include "agcl/ModelBundle.h"
#include "agcl/PairedAugmentation.h"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace agcl::detail {

/** A well-mixed 63-bit value of (seed, stage, step, stream): every random draw of a step derives
 *  from it, so a step's randomness does not depend on what ran before it (resume, prefetching). */
uint64_t
StepSeed(uint64_t seed, int stage, int64_t step, uint64_t stream = 0);

/** Linear warm-up then cosine decay to 0 (step = steps already done). */
double
LearningRate(double base, int64_t step, int64_t steps, double warmupFraction);

/** The parameters of `modules` that require a gradient. */
std::vector<at::Tensor>
Trainable(const std::vector<torch::nn::Module *> & modules);

/** The options that must not change between a run and its resumption (all but stage, resume,
 *  device, checkpoint_every, log_every, prefetch, show_progress). */
nlohmann::json
Fingerprint(const AGCLTrainerOptions & options);

/** One step's rows of a patch pool. */
struct Batch
{
  at::Tensor image, mask, organ, modality;
  /** The global batch's index of this rank's first patch (distributed: each rank takes a
   *  contiguous share of every step's global batch; 0 in one process). */
  int64_t first = 0;
  /** The global batch's number of patches (this rank holds mask.size(0) of them). */
  int64_t total = 0;

  /** The factor that turns the mean loss over this rank's share into its part of the ranks'
   *  average that equals the global batch's mean (shares may differ by one patch). */
  double
  ShareWeight(int64_t ranks) const
  {
    return total > 0 ? static_cast<double>(mask.size(0) * ranks) / static_cast<double>(total) : 1.0;
  }
};

class TrainingRun
{
public:
  TrainingRun(const AGCLTrainerOptions &                    options,
              AGCLModel &                                   model,
              TrainingData &                                data,
              std::filesystem::path                         directory,
              WritePointHook                                checkpointHook,
              std::function<void(const TrainingProgress &)> progress);

  /** Throws std::invalid_argument("AGCLTrainer: " + message) unless `condition`. */
  static void
  Require(bool condition, const std::string & message);

  // -- set up by AGCLTrainer::Run before the stages run
  const AGCLTrainerOptions &   options;
  AGCLModel &                  model;
  TrainingData &               data;
  const std::filesystem::path  directory;
  c10::Device                  device{ c10::kCPU };
  std::vector<TrainingSubject> subjects;
  std::vector<size_t>          labelled;    // stage 0 and 2 subjects
  std::vector<size_t>          pretraining; // stage 1 subjects
  std::vector<size_t>          validation;
  std::vector<std::string>     labelledNames;          // names of `labelled`, each once
  AttentionSource              pretrainingAttention{}; // the options' unless some subjects are unlabelled
  std::array<int64_t, 3>       steps{ 0, 0, 0 };       // effective steps of stages 0, 1, 2
  int                          stage = 0;              // the stage to run next
  int64_t                      step = 0;               // its steps already done
  ModelBundle                  checkpoint;             // loaded when resuming
  bool                         haveCheckpoint = false; // `checkpoint` holds state.stage's optimizer state
  nlohmann::json               dataFingerprint;        // kept in every checkpoint
  /** The job's processes (a group of one without distribution: no communication). Rank 0
   *  writes the log, the checkpoints and the model; every rank trains on its share. */
  std::shared_ptr<DistributedGroup> group;

  bool
  Leader() const
  {
    return group->Rank() == 0;
  }

  // -- results
  double           bestDice = -1.0;   // best stage-2 validation Dice
  double           coarseDice = -1.0; // stage-0 validation Dice on the coarse grid
  std::vector<int> unconverged;       // stages CheckConvergence judged not levelled off

  /** Opens log.jsonl: appended to (resume: trimmed to the checkpoint first) or started anew. */
  void
  OpenLog(bool continuing);
  /** Appends one JSON line to the log and flushes it. */
  void
  Log(const nlohmann::json & line);

  /** Writes checkpoint.agcl: weights, the optimizer's state, the auxiliary module (stage 1),
   *  the best weights (stage 2), where the run stands; the log is fsync'ed first. */
  void
  WriteCheckpoint(const AdamOptimizer * optimizer, torch::nn::Module * auxiliary, const ModelBundle * best);
  /** Resuming mid-stage: loads the checkpoint's optimizer (and auxiliary) state, which belongs
   *  to the current stage. Nothing when the stage starts afresh. */
  void
  ResumeInto(AdamOptimizer & optimizer, torch::nn::Module * auxiliary);
  /** Moves to the next stage (or past the last one for a single-stage run) and checkpoints. */
  void
  FinishStage();

  /** The step loop every stage shares: the learning-rate schedule, the optimizer step on a
   *  finite loss, logging, checkpoints and the convergence check at the end. `computeLoss` runs
   *  one step's forward and backward pass and returns the loss and the number of inputs it
   *  used; `afterStep` (may be empty) runs after each step; `checkpoint` writes a checkpoint. */
  void
  RunSteps(int                                                 stage,
           int64_t                                             steps,
           double                                              baseLearningRate,
           AdamOptimizer &                                     optimizer,
           const std::function<std::pair<double, int64_t>()> & computeLoss,
           const std::function<void()> &                       afterStep,
           const std::function<void()> &                       checkpoint);

  /** Distributed runs, after each step's backward pass: the trained parameters' gradients
   *  combined over the ranks (Mean: each rank's loss is the mean over its share; Sum: each
   *  rank's loss is its share of the global loss, as DistributedContrastiveLoss gives), and the
   *  loss reported as the ranks' mean (Mean) or sum (Sum). Set by each stage before RunSteps. */
  Reduction gradientReduction = Reduction::Mean;
  /** The parameters whose gradients RunSteps combines (the optimizer's). */
  std::vector<at::Tensor> synchronised;
  /** Rank 0's values of the model's parameters and buffers (and `extra`'s) on every rank. */
  void
  BroadcastModel(torch::nn::Module * extra = nullptr);

  /** The query patches of `subjects` (organ, modality and mask as int64), with the same seed
   *  per subject in every stage, so that a resumed run draws the same ones. The last pool made
   *  is kept and given again for the same subjects and source (stage 2's BatchNorm pass reuses
   *  stage 1's pool): the coarse network, which places the patches, is trained in stage 0 only,
   *  and stage 0 draws no pool. The stages only read a pool's tensors. */
  PatchSet
  Pool(const std::vector<size_t> & subjects, AttentionSource source);

  /** A stage's batch source: each call returns this step's batch (min(batchSize, pool) rows
   *  drawn from the step's own random stream, augmented when `augmentation` is given) and
   *  starts preparing the next step's, on a loader thread when prefetching. `patches` and
   *  `augmentation` must outlive the source. */
  std::function<Batch()>
  Batches(const PatchSet &           patches,
          int                        stage,
          int64_t                    batchSize,
          int64_t                    steps,
          const PairedAugmentation * augmentation);

private:
  using Clock = std::chrono::steady_clock;

  void
  Report(int64_t steps, double loss, double learningRate);
  /** The floating-point buffers (BatchNorm running statistics) of the model, averaged over the
   *  ranks after every step so that every rank holds the same model. */
  void
  AverageBuffers();
  /** The model's networks: coarse, encoder, decoder. */
  std::array<torch::nn::Module *, 3>
  ModelModules() const;
  void
  Emit(const TrainingProgress & progress, const nlohmann::json & extra);

  WritePointHook                                m_CheckpointHook;
  std::function<void(const TrainingProgress &)> m_Progress;
  std::ofstream                                 m_Log;
  bool                                          m_Terminal = false;
  Clock::time_point                             m_IntervalStart;
  int64_t                                       m_IntervalInputs = 0;
  Clock::time_point                             m_StageStart;
  int64_t                                       m_StageStartStep = 0;
  int64_t                                       m_IntervalStartStep = 0;
  // Pool's last pool and what it was drawn from.
  std::vector<size_t> m_LastPoolSubjects;
  AttentionSource     m_LastPoolSource{};
  PatchSet            m_LastPool;
  bool                m_HaveLastPool = false;
};

void
RunCoarseStage(TrainingRun & run);
void
RunPretrainingStage(TrainingRun & run);
void
RunDecoderStage(TrainingRun & run);

} // namespace agcl::detail

#endif
