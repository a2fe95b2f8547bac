/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl train: the coarse network, the encoder's pre-training and the decoder (stages 0, 1, 2)
// on a manifest's cohort -> OUT/model.agcl (agcl::AGCLTrainer over itk::ManifestTrainingData).

#include "ReadImage.h"
#include "Subcommands.h"

#include "itkAGCLCalibration.h"
#include "itkAGCLModelStatistics.h"

#include "agcl/JsonInput.h"
#include "agcl/AGCLTrainer.h"
#include "agcl/ModelBundle.h"
#include "itkManifestTrainingData.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <unistd.h>

namespace agcl::cli {

namespace {
using CTImage = itk::Image<short, 3>;

struct TrainOptions
{
  std::string manifest, config, out, stage = "all", mode = "agcl", attention = "coarse", initFrom, device = "cpu";
  std::vector<std::string> pretrainingModalities;
  agcl::AGCLTrainerOptions trainer;
  bool                     noPrefetch = false, quiet = false;
};

agcl::ModelConfig
ReadConfig(const std::string & path)
{
  if (path.empty())
    return {};
  nlohmann::json json;
  try
  {
    json = agcl::ReadJsonFile(path);
  }
  catch (const std::invalid_argument & e)
  {
    throw InputError(std::string("config ") + e.what());
  }
  try
  {
    return agcl::ModelConfig::FromJson(json);
  }
  catch (const agcl::ModelBundleError & e)
  {
    throw InputError("config '" + path + "': " + e.what());
  }
}

// Fault injection for the kill test (test/cli/kill_test.py): AGCL_FAULT_INJECTION=<point>:<n>
// kills this process with SIGKILL at <point> (written, flushed, before-rename, renamed) of its
// n-th checkpoint write, as a power cut or the OOM killer would: no destructor, no flush runs.
void
InstallFaultInjection(agcl::AGCLTrainer & trainer)
{
  const char * value = std::getenv("AGCL_FAULT_INJECTION");
  if (value == nullptr || *value == '\0')
    return;
  const std::string text = value;
  const auto        colon = text.find(':');
  const std::string point = text.substr(0, colon);
  long              count = 0;
  try
  {
    size_t used = 0;
    if (colon != std::string::npos)
      count = std::stol(text.substr(colon + 1), &used);
    if (used == 0 || colon + 1 + used != text.size())
      count = 0;
  }
  catch (const std::exception &)
  {
    count = 0;
  }
  agcl::WritePoint where{};
  bool             known = false;
  for (const auto p : { agcl::WritePoint::Written,
                        agcl::WritePoint::Flushed,
                        agcl::WritePoint::BeforeRename,
                        agcl::WritePoint::Renamed })
    if (point == agcl::WritePointName(p))
    {
      where = p;
      known = true;
    }
  if (!known || count < 1)
    throw InputError("AGCL_FAULT_INJECTION='" + text +
                     "': expected <point>:<n> with point written, flushed, before-rename or renamed and n >= 1");
  trainer.SetCheckpointHook([where, count, calls = 0L](agcl::WritePoint at, const std::filesystem::path &) mutable {
    if (at == where && ++calls == count)
      ::kill(::getpid(), SIGKILL);
  });
}

int
Run(TrainOptions & options)
{
  agcl::AGCLTrainerOptions & t = options.trainer;
  t.output_directory(options.out);
  if (options.stage == "all")
    t.stage(-1);
  else if (options.stage == "0" || options.stage == "1" || options.stage == "2")
    t.stage(std::stoi(options.stage));
  else
    throw InputError("--stage '" + options.stage + "': expected all, 0, 1 or 2");
  try
  {
    agcl::SetPretrainingMode(t, options.mode);
  }
  catch (const std::invalid_argument &)
  {
    throw InputError("--mode '" + options.mode +
                     "': expected agcl, supcon, sscl, ce or random (none, supervised: random, fine-tuned)");
  }
  if (options.attention != "coarse" && options.attention != "truth")
    throw InputError("--attention '" + options.attention + "': expected coarse or truth");
  t.attention(options.attention == "coarse" ? agcl::AttentionSource::Coarse : agcl::AttentionSource::Truth);
  t.pretraining_modalities(options.pretrainingModalities);
  t.device(options.device);
  t.prefetch(!options.noPrefetch);
  t.show_progress(!options.quiet);
  if (!options.initFrom.empty())
  {
    if (!std::filesystem::exists(options.initFrom))
      throw InputError("--init-from '" + options.initFrom + "': no such file");
    t.init_from(options.initFrom);
  }
  agcl::ModelConfig config = ReadConfig(options.config);
  if (!options.initFrom.empty())
  {
    try
    {
      config = agcl::ModelConfig::FromJson(agcl::ModelBundle::Load(options.initFrom).config);
    }
    catch (const agcl::ModelBundleError & e)
    {
      throw InputError("--init-from '" + options.initFrom + "': " + e.what());
    }
  }
  config.statistics = nlohmann::json::object(); // an --init-from model's statistics are not this model's
  t.model(config);

  std::unique_ptr<itk::ManifestTrainingData> data;
  try
  {
    data = std::make_unique<itk::ManifestTrainingData>(options.manifest, config);
  }
  catch (const agcl::ManifestError & e)
  {
    throw InputError(e.what());
  }
  agcl::AGCLTrainer trainer(t);
  InstallFaultInjection(trainer);
  std::string model;
  try
  {
    model = trainer.Run(*data);
  }
  catch (const agcl::ModelBundleError & e)
  {
    throw InputError(e.what());
  }
  std::cout << "labelled subjects (stages 0 and 2): " << trainer.LabelledSubjects().size() << "\n";
  const auto & steps = trainer.EffectiveSteps();
  std::cout << "steps per stage (0, 1, 2): " << steps[0] << ", " << steps[1] << ", " << steps[2] << "\n";
  for (const int stage : trainer.UnconvergedStages())
    std::cout << "stage " << stage << " stopped before its loss levelled off: more steps would likely help\n";
  if (trainer.CoarseValidationDice() >= 0)
    std::cout << "coarse network validation Dice (coarse grid): " << trainer.CoarseValidationDice() << "\n";
  if (trainer.BestValidationDice() >= 0)
    std::cout << "best validation Dice (val patches): " << trainer.BestValidationDice() << "\n";
  // The finished model's own statistics on the validation volumes (plausibility warnings when
  // segmenting; agcl calibrate does the same for any model).
  if (t.stage() < 0 || t.stage() == 2)
  {
    const size_t validation = itk::CalibrateTrainedModel(
      model,
      options.manifest,
      options.device,
      [](const std::string & image) { std::cout << "calibration: segmented " << image << std::endl; },
      [](const std::string & path, const std::string & what) { return ReadImage<CTImage>(path, what); });
    if (validation >= itk::kMinimumCalibrationVolumes)
      std::cout << "the model records its own statistics on the " << validation << " validation volumes\n";
    else
      std::cout << validation << " validation volume(s), fewer than " << itk::kMinimumCalibrationVolumes
                << ": the model records no statistics (plausibility warnings for missing organs only)\n";
  }
  std::cout << "model: " << model << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterTrain(CLI::App & app, Runner & runner)
{
  auto                       options = std::make_shared<TrainOptions>();
  auto *                     sub = app.add_subcommand("train",
                                  "Train a model: coarse network (stage 0), encoder pre-training (stage 1), "
                                                      "decoder (stage 2)");
  agcl::AGCLTrainerOptions & t = options->trainer;
  sub->add_option("--manifest", options->manifest, "cohort CSV: subject,image,label,modality,split")->required();
  sub->add_option("--config", options->config, "model config JSON (organs, modalities, window, sizes)");
  sub->add_option("--out", options->out, "run folder: checkpoint.agcl, log.jsonl, settings.json, model.agcl")
    ->required();
  sub->add_option("--stage", options->stage, "all, 0, 1 or 2")->capture_default_str();
  sub
    ->add_option("--mode",
                 options->mode,
                 "pre-training: agcl, supcon, sscl, ce or random (the paper's RI); none or supervised = random with "
                 "--finetune-encoder")
    ->capture_default_str();
  sub->add_option("--temperature", t.temperature(), "contrastive temperature")->capture_default_str();
  sub->add_option("--projection-features", t.projection_features(), "projection head output size (paper: 256)")
    ->capture_default_str();
  sub->add_option("--label-fraction", t.label_fraction(), "share of labelled training subjects for stages 0 and 2")
    ->capture_default_str();
  sub->add_option("--attention", options->attention, "training patches' attention: coarse (network) or truth")
    ->capture_default_str();
  sub->add_flag("--finetune-encoder",
                t.finetune_encoder(),
                "stage 2 trains the encoder too (the fine-tune protocol; default: the paper's, encoder "
                "frozen, its BatchNorm statistics re-estimated on the training patches)");
  sub->add_option(
    "--pretrain-modalities", options->pretrainingModalities, "stage 1 only on these modalities (default: all)");
  sub->add_option("--init-from", options->initFrom, "start from this model bundle");
  sub->add_flag("--resume", t.resume(), "continue from OUT/checkpoint.agcl");
  sub->add_option("--seed", t.seed(), "seed (same seed, same CPU: same weights)")->capture_default_str();
  sub->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub
    ->add_option(
      "--coarse-steps",
      t.coarse_steps(),
      "stage 0 steps (-1: sized to the cohort, 40 passes over the labelled volumes in 400..1500 steps; 0: skip)")
    ->capture_default_str();
  sub->add_option("--coarse-batch", t.coarse_batch_size(), "stage 0 windows per step")->capture_default_str();
  sub
    ->add_option("--coarse-class-weights",
                 t.coarse_class_weights(),
                 "stage 0 cross-entropy weighted by class share^-1/2 (true/false)")
    ->capture_default_str();
  sub->add_option("--coarse-lr", t.coarse_learning_rate(), "stage 0 learning rate")->capture_default_str();
  sub
    ->add_option(
      "--pretrain-steps", t.pretraining_steps(), "stage 1 steps (-1: 8 passes over the patch pool, in 200..6000)")
    ->capture_default_str();
  sub->add_option("--pretrain-batch", t.pretraining_batch_size(), "stage 1 patches per step (two views each)")
    ->capture_default_str();
  sub->add_option("--pretrain-lr", t.pretraining_learning_rate(), "stage 1 learning rate")->capture_default_str();
  sub
    ->add_option("--decoder-steps", t.decoder_steps(), "stage 2 steps (-1: 8 passes over the patch pool, in 200..6000)")
    ->capture_default_str();
  sub->add_option("--decoder-batch", t.decoder_batch_size(), "stage 2 patches per step")->capture_default_str();
  sub->add_option("--decoder-lr", t.decoder_learning_rate(), "stage 2 learning rate")->capture_default_str();
  sub
    ->add_option(
      "--encoder-lr", t.encoder_learning_rate(), "stage 2 learning rate of a fine-tuned encoder (-1: --decoder-lr)")
    ->capture_default_str();
  sub
    ->add_option("--decoder-ce",
                 t.decoder_cross_entropy(),
                 "stage 2 loss: Dice plus pixel-wise cross-entropy (true/false; false: Dice alone)")
    ->capture_default_str();
  sub->add_option("--warmup", t.warmup_fraction(), "warm-up share of each stage's steps")->capture_default_str();
  sub->add_option("--weight-decay", t.weight_decay(), "decoupled weight decay")->capture_default_str();
  sub->add_option("--patches-per-organ", t.patches_per_organ(), "patch pool: patches per organ and subject")
    ->capture_default_str();
  sub->add_option("--checkpoint-every", t.checkpoint_every(), "steps between checkpoints")->capture_default_str();
  sub
    ->add_option(
      "--validate-every", t.validate_every(), "stage 2 steps between validations (-1: 20 validations per stage)")
    ->capture_default_str();
  sub->add_option("--log-every", t.log_every(), "steps between log lines")->capture_default_str();
  sub->add_flag("--no-prefetch", options->noPrefetch, "prepare batches on the main thread");
  sub->add_flag("--quiet", options->quiet, "no progress output");
  sub->callback([options, &runner] { runner = [options] { return Run(*options); }; });
}

} // namespace agcl::cli
