/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AGCLTrainer_h
#define agcl_AGCLTrainer_h

#include "agcl/AtomicFile.h"
#include "agcl/ModelConfig.h"
#include "agcl/PretrainingMode.h"
#include "agcl/TrainingData.h"

#include <torch/arg.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace agcl {

class AGCLModel;
class DistributedGroup;

struct AGCLTrainerOptions
{
  /** Where checkpoint.agcl, log.jsonl, settings.json and model.agcl go. */
  TORCH_ARG(std::string, output_directory) = "run";
  /** Architecture, organs, modalities, patch and window settings of the new model (ignored
   *  with init_from, whose bundle brings its own). */
  TORCH_ARG(ModelConfig, model) = ModelConfig{};
  /** -1: stages 0, 1, 2 in turn; 0, 1 or 2: that stage only (from the checkpoint with resume,
   *  from init_from, or from random weights). */
  TORCH_ARG(int, stage) = -1;
  /** Stage-1 pre-training (PretrainingMode.h); Random skips stage 1 (the paper's RI). */
  TORCH_ARG(PretrainingMode, mode) = PretrainingMode::AGCL;
  TORCH_ARG(double, temperature) = 0.1;
  /** Output size of the projection head (the paper's O_E = 256). */
  TORCH_ARG(int64_t, projection_features) = 128;
  /** Attention of the training patches of stages 1 and 2. Validation patches always use the
   *  coarse network (as inference does); with label_fraction < 1 or unlabelled training
   *  subjects stage 1 uses the coarse network too. */
  TORCH_ARG(AttentionSource, attention) = AttentionSource::Coarse;
  /** Share of the labelled training subjects used by stages 0 and 2 (seeded choice of subject
   *  names, at least 1; every manifest row of a chosen subject, e.g. both phases, is used). */
  TORCH_ARG(double, label_fraction) = 1.0;
  /** Stage 2 trains the encoder as well (the fine-tune protocol). false: the paper's protocol,
   *  the encoder frozen in stage 2 after its BatchNorm statistics are re-estimated on stage 1's
   *  training patches (no weight changes). */
  TORCH_ARG(bool, finetune_encoder) = false;
  /** Stage 1 uses only subjects of these modalities (empty: all): single- vs multi-modality
   *  pre-training. */
  TORCH_ARG(std::vector<std::string>, pretraining_modalities) = {};
  /** Start from this bundle's weights and configuration. */
  TORCH_ARG(std::string, init_from) = "";
  /** Continue from output_directory/checkpoint.agcl (the options must match the checkpoint's). */
  TORCH_ARG(bool, resume) = false;
  TORCH_ARG(uint64_t, seed) = 1;
  TORCH_ARG(std::string, device) = "cpu";

  /** Steps per stage; -1 (the default) = sized to the cohort: stage 0 40 passes over the
   *  labelled volumes (in [400, 1500] steps), stages 1 and 2 8 passes over their patch pools
   *  (in [200, 6000]); 0 skips the stage. A stage whose loss still falls at its end is reported
   *  (UnconvergedStages, a warning, log.jsonl). */
  TORCH_ARG(int64_t, coarse_steps) = -1;
  TORCH_ARG(int64_t, coarse_batch_size) = 2;
  TORCH_ARG(double, coarse_learning_rate) = 3e-3;
  /** Stage 0's cross-entropy weighs each class by (its share of the labelled voxels)^-1/2
   *  (normalised so that the mean weight per voxel is 1), so that small organs (adrenal,
   *  veins) are not drowned by background and liver. */
  TORCH_ARG(bool, coarse_class_weights) = true;
  TORCH_ARG(int64_t, pretraining_steps) = -1;
  TORCH_ARG(int64_t, pretraining_batch_size) = 32;
  TORCH_ARG(double, pretraining_learning_rate) = 1e-3;
  TORCH_ARG(int64_t, decoder_steps) = -1;
  TORCH_ARG(int64_t, decoder_batch_size) = 16;
  TORCH_ARG(double, decoder_learning_rate) = 1e-3;
  /** Stage 2's learning rate for the encoder when it is fine-tuned (finetune_encoder); -1: the
   *  decoder's. Same schedule as the decoder's. */
  TORCH_ARG(double, encoder_learning_rate) = -1.0;
  /** Stage 2's loss: the two-class Dice loss plus, when true, the pixel-wise cross-entropy
   *  (which also weighs the organ's boundary pixels in patches where it is small). */
  TORCH_ARG(bool, decoder_cross_entropy) = false;
  /** Stage 2's loss includes the Dice loss (the default). False with decoder_cross_entropy: the
   *  cross-entropy alone (the paper's Table III, DeepLabv3+ on PASCAL VOC). At least one of the
   *  two must be on. */
  TORCH_ARG(bool, decoder_dice) = true;
  /** Linear warm-up over this share of a stage's steps, then cosine decay to 0. */
  TORCH_ARG(double, warmup_fraction) = 0.05;
  TORCH_ARG(double, weight_decay) = 1e-4;
  /** Query patches drawn per organ and subject for the stage-1/2 patch pools. */
  TORCH_ARG(int64_t, patches_per_organ) = 24;
  TORCH_ARG(int64_t, checkpoint_every) = 50;
  /** Stage 2: validation Dice every this many steps (and at the end); -1 (the default): 20
   *  validations over the stage (every ceil(steps / 20) steps). */
  TORCH_ARG(int64_t, validate_every) = -1;
  TORCH_ARG(int64_t, log_every) = 10;
  /** Prepare the next batch on a loader thread while the current step computes. */
  TORCH_ARG(bool, prefetch) = true;
  /** Progress on stderr: a live bar on a terminal, plain lines otherwise; false: silent. */
  TORCH_ARG(bool, show_progress) = true;
};

/** The options by their names as JSON: every option except output_directory and model (the
 *  latter is ModelConfig::ToJson). mode and attention are their names ("agcl", "coarse"). */
nlohmann::json
OptionsToJson(const AGCLTrainerOptions & options);

/** Sets options.mode from its name (ParsePretrainingMode, std::invalid_argument for an unknown
 *  one); the aliases "none" and "supervised" (IsEndToEndAlias) set finetune_encoder as well.
 *  The one place of that rule: the options JSON and agcl train's --mode both come here. */
void
SetPretrainingMode(AGCLTrainerOptions & options, const std::string & name);

/** `base` with the options named in `json` (an object, the names and forms of OptionsToJson)
 *  replaced; an unknown name, or a value of the wrong type or an unknown mode/attention, is a
 *  std::invalid_argument naming the option. */
AGCLTrainerOptions
OptionsFromJson(const nlohmann::json & json, AGCLTrainerOptions base = {});

/** Stage 0's cross-entropy class weights from the classes' voxel counts [C] (any numeric
 *  dtype): count^-1/2 for every class that occurs, 0 for the others, scaled so that the mean
 *  weight per labelled voxel is 1. Returns [C] double. */
at::Tensor
CoarseClassWeights(const at::Tensor & counts);

/** The auto rule for a stage's steps (an option of -1): ceil(passes x inputs / batch) clamped
 *  to [minimum, cap]; stage 0: 40 passes over the labelled volumes, [400, 1500]; stages 1
 *  and 2: 8 passes over the patch pool (volumes x organs x patches_per_organ), [200, 6000]. */
int64_t
AutoSteps(int stage, double inputs, int64_t batch);

/** Whether a stage's loss levelled off, from the means of the first, middle and last tenth of
 *  `losses` (F, M, L): not converged when the loss fell by more than 5% (F - L > 0.05 |F|) and
 *  more than 20% of that fall came in the second half (M - L > 0.2 (F - L)). A schedule that
 *  decays the learning rate to 0 flattens the last steps of any run, so the last tenths alone
 *  cannot tell. Not checked (checked = false) with fewer than 50 losses. */
struct Convergence
{
  bool   checked = false, converged = true;
  double first = 0.0, middle = 0.0, last = 0.0;
};
Convergence
CheckConvergence(const std::vector<double> & losses);

/** What a logging step reports (also written as one JSON line to log.jsonl). */
struct TrainingProgress
{
  int     stage = 0;
  int64_t step = 0; ///< steps done in this stage
  int64_t steps = 0;
  double  loss = 0.0;
  double  learning_rate = 0.0;
  /** Network inputs per second over the last logging interval (stage 0: coarse windows,
   *  stage 1: augmented views, stage 2: patches). */
  double patches_per_second = 0.0;
  double eta_seconds = 0.0;
};

/** The two-stage learning of the paper (§III), plus the coarse network it builds on:
 *  - stage 0: the coarse 3D network on the coarse grid, on windows of coarse_window_slices
 *    along z (what inference runs), Dice + cross-entropy;
 *  - stage 1: encoder pre-training on two augmented views of query patches (PretrainingMode);
 *  - stage 2: the ASPP decoder on binary organ patches with the Dice loss (paper Eq. 1), the
 *    encoder frozen (BatchNorm statistics re-estimated on stage 1's training patches first, then
 *    BatchNorm in eval mode) unless finetune_encoder; the weights
 *    with the best validation Dice (patches of the val subjects, attention from the coarse
 *    network) are kept.
 *
 *  Reproducible: every step's random numbers (batch choice, augmentation, dropout) derive from
 *  (seed, stage, step), so on the CPU a run resumed from a checkpoint ends with the same
 *  weights as an uninterrupted one. Checkpoints (every checkpoint_every steps, at each stage's
 *  end) hold the weights, the optimizer state and the best weights so far, in the model-bundle
 *  format, written atomically (a killed run leaves the previous checkpoint intact).
 *
 *  Usage: `AGCLTrainer trainer(options); trainer.Run(data);` -> output_directory/model.agcl.
 *  Bad options or data throw std::invalid_argument naming the option or subject. */
class AGCLTrainer
{
public:
  explicit AGCLTrainer(AGCLTrainerOptions options);
  ~AGCLTrainer();

  /** Trains and writes output_directory/model.agcl; returns its path. */
  std::string
  Run(TrainingData & data);

  /** Called at every logging step (after the JSON line is written). */
  void
  SetProgressCallback(std::function<void(const TrainingProgress &)> callback);

  /** Fault injection (tests, `agcl train` under AGCL_FAULT_INJECTION): called at each point of
   *  every checkpoint write (agcl::WritePoint) with its temporary file; throwing from it, or
   *  killing the process, simulates a crash at that moment. */
  void
  SetCheckpointHook(WritePointHook hook);

  /** Runs as one rank of a distributed job (agcl/Distributed.h): each rank trains on its share
   *  of every step's global batch (same seed: the same global batch as one process), the
   *  gradients are combined before every optimizer step, stage 1 draws its negatives from every
   *  rank, BatchNorm running statistics are averaged after every step (the batch statistics of
   *  a forward pass are the rank's own). Rank 0 holds the output directory's lock and writes
   *  the log, settings, checkpoints and the model; every rank reads the checkpoint on resume
   *  (the directory must be shared), and a checkpoint of another world size is refused. Without
   *  a group (or a group of one): one process, as before. */
  void
  SetDistributedGroup(std::shared_ptr<DistributedGroup> group);

  /** The trained (or training) model. */
  AGCLModel &
  Model();

  /** Names of the training subjects stages 0 and 2 used (after Run), each once. */
  const std::vector<std::string> &
  LabelledSubjects() const
  {
    return m_Labelled;
  }
  /** Best stage-2 validation Dice (-1 if there was none). */
  double
  BestValidationDice() const
  {
    return m_BestDice;
  }

  /** Stage-0 validation Dice of the coarse network on the coarse grid (-1 if not run). */
  double
  CoarseValidationDice() const
  {
    return m_CoarseDice;
  }

  /** The steps each stage (0, 1, 2) ran with after Run: the options' values, or for -1 the
   *  auto rule's (a budget sized to the cohort: the stage's inputs times a number of passes,
   *  clamped; Documentation/user-guide.md states it). */
  const std::array<int64_t, 3> &
  EffectiveSteps() const
  {
    return m_Steps;
  }
  /** The stages of the last Run that CheckConvergence judged not levelled off (each also
   *  warned about on stderr and in log.jsonl). */
  const std::vector<int> &
  UnconvergedStages() const
  {
    return m_Unconverged;
  }

  const AGCLTrainerOptions &
  options() const
  {
    return m_Options;
  }

  static std::string
  CheckpointPath(const std::string & directory);

private:
  AGCLTrainerOptions                            m_Options;
  std::shared_ptr<AGCLModel>                    m_Model;
  std::function<void(const TrainingProgress &)> m_Progress;
  WritePointHook                                m_CheckpointHook;
  std::shared_ptr<DistributedGroup>             m_Group;
  std::vector<std::string>                      m_Labelled;
  double                                        m_BestDice = -1.0;
  double                                        m_CoarseDice = -1.0;
  std::array<int64_t, 3>                        m_Steps{ 0, 0, 0 };
  std::vector<int>                              m_Unconverged;
};

} // namespace agcl

#endif
