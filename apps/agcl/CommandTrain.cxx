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
#include "agcl/Distributed.h"
#include "agcl/ModelBundle.h"
#include "itkManifestTrainingData.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char ** environ;

namespace agcl::cli {

namespace {
using CTImage = itk::Image<short, 3>;

struct TrainOptions
{
  std::string manifest, config, out, stage = "all", mode = "agcl", attention = "coarse", initFrom, device = "cpu";
  std::vector<std::string> pretrainingModalities;
  agcl::AGCLTrainerOptions trainer;
  bool                     noPrefetch = false, quiet = false;
  // Distributed training (Documentation/distributed.md).
  int         nproc = 1;
  std::string distBackend = "gloo";
  double      distTimeout = 300;
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

// --nproc N: this machine's N ranks, started here as copies of this command (without --nproc)
// with the environment torchrun would set, on the loopback interface. The first rank that fails
// ends the others (SIGTERM, then SIGKILL after 10 s); its exit code is this command's.
volatile std::sig_atomic_t g_Interrupted = 0;

int
LaunchLocalRanks(int nproc)
{
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw InputError("--nproc " + std::to_string(nproc) +
                     ": RANK/WORLD_SIZE are set already (a launcher such as torchrun started this process); use one or "
                     "the other");
  // This command's arguments, without --nproc.
  std::ifstream            cmdline("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> arguments;
  for (std::string a; std::getline(cmdline, a, '\0');)
    arguments.push_back(a);
  std::vector<std::string> kept;
  for (size_t i = 0; i < arguments.size(); ++i)
  {
    if (arguments[i] == "--nproc")
    {
      ++i;
      continue;
    }
    if (arguments[i].rfind("--nproc=", 0) == 0)
      continue;
    kept.push_back(arguments[i]);
  }
  // A port on 127.0.0.1 that is free now (rank 0's store takes it a moment later).
  int port = 0;
  {
    const int   s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr *>(&address), &length) != 0)
      throw std::runtime_error("--nproc: no free TCP port on 127.0.0.1");
    port = ntohs(address.sin_port);
    ::close(s);
  }
  const std::string  self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<pid_t> children;
  for (int rank = 0; rank < nproc; ++rank)
  {
    const std::map<std::string, std::string> set{
      { "RANK", std::to_string(rank) },       { "WORLD_SIZE", std::to_string(nproc) },
      { "LOCAL_RANK", std::to_string(rank) }, { "LOCAL_WORLD_SIZE", std::to_string(nproc) },
      { "MASTER_ADDR", "127.0.0.1" },         { "MASTER_PORT", std::to_string(port) }
    };
    std::vector<std::string> environment;
    for (char ** e = environ; *e != nullptr; ++e)
    {
      const std::string entry = *e;
      if (set.count(entry.substr(0, entry.find('='))) == 0 && entry.rfind("TORCHELASTIC_", 0) != 0)
        environment.push_back(entry);
    }
    for (const auto & [name, value] : set)
      environment.push_back(name + "=" + value);
    std::vector<char *> envp, argv;
    for (auto & e : environment)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto & a : kept)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t     pid = 0;
    const int error = ::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data());
    if (error != 0)
    {
      for (const pid_t c : children)
        ::kill(c, SIGKILL);
      throw std::runtime_error("--nproc: cannot start rank " + std::to_string(rank) + ": " + std::strerror(error));
    }
    children.push_back(pid);
  }
  // Ctrl-C / SIGTERM reach the ranks (they share the terminal's process group on Ctrl-C).
  std::signal(SIGTERM, [](int) { g_Interrupted = 1; });
  std::signal(SIGINT, [](int) { g_Interrupted = 1; });
  std::vector<int> codes(children.size(), -1);
  int              result = kSuccess;
  bool             stopping = false;
  auto             stopAt = std::chrono::steady_clock::time_point::max();
  for (size_t left = children.size(); left > 0;)
  {
    for (size_t r = 0; r < children.size(); ++r)
    {
      int status = 0;
      if (codes[r] != -1 || ::waitpid(children[r], &status, WNOHANG) != children[r])
        continue;
      codes[r] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      --left;
      if (codes[r] != 0 && !stopping)
      {
        std::cerr << "agcl: rank " << r << " of " << nproc << " failed (exit code " << codes[r]
                  << "): stopping the others" << std::endl;
        result = codes[r] == kBadInput ? kBadInput : kRuntimeFailure;
        stopping = true;
      }
    }
    if (g_Interrupted && !stopping)
    {
      std::cerr << "agcl: interrupted: stopping the ranks" << std::endl;
      result = kRuntimeFailure;
      stopping = true;
    }
    if (stopping && stopAt == std::chrono::steady_clock::time_point::max())
    {
      for (size_t r = 0; r < children.size(); ++r)
        if (codes[r] == -1)
          ::kill(children[r], SIGTERM);
      stopAt = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    if (std::chrono::steady_clock::now() > stopAt)
      for (size_t r = 0; r < children.size(); ++r)
        if (codes[r] == -1)
          ::kill(children[r], SIGKILL);
    if (left > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

int
Run(TrainOptions & options)
{
  if (options.nproc < 1)
    throw InputError("--nproc " + std::to_string(options.nproc) + ": expected a number of processes >= 1");
  if (!(options.distTimeout > 0 && options.distTimeout <= 86400))
    throw InputError("--dist-timeout " + std::to_string(options.distTimeout) + ": expected seconds in (0, 86400]");
  if (options.distBackend != "gloo" && options.distBackend != "nccl")
    throw InputError("--dist-backend '" + options.distBackend + "': expected gloo or nccl");
  if (options.nproc > 1)
    return LaunchLocalRanks(options.nproc);
  // One rank of a distributed job when the launcher's variables are there.
  std::shared_ptr<agcl::DistributedGroup>     group;
  std::optional<agcl::DistributedEnvironment> environment;
  try
  {
    environment = agcl::ReadDistributedEnvironment();
  }
  catch (const std::invalid_argument & e)
  {
    throw InputError(e.what());
  }
  if (environment && environment->Distributed())
  {
    if (options.distBackend == "nccl" && !agcl::DistributedNcclAvailable())
      throw InputError("--dist-backend nccl: this build's LibTorch has no NCCL (use gloo)");
    if (options.distBackend == "nccl" && options.device == "cpu")
      throw InputError("--dist-backend nccl needs --device cuda (NCCL reduces GPU tensors); use gloo on the CPU");
    if (!agcl::DistributedAvailable())
      throw InputError("WORLD_SIZE=" + std::to_string(environment->worldSize) +
                       ": this build of agcl has no distributed support (its LibTorch lacked c10d/Gloo)");
    agcl::DistributedOptions distributed;
    distributed.backend = options.distBackend;
    distributed.timeout = std::chrono::milliseconds(static_cast<int64_t>(options.distTimeout * 1000));
    // Each rank on its own GPU of the machine (cuda -> cuda:LOCAL_RANK).
    if (options.device == "cuda")
      options.device = "cuda:" + std::to_string(environment->localRank);
    group = agcl::DistributedGroup::Connect(*environment, distributed);
  }
  const bool                 leader = group == nullptr || group->Rank() == 0;
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
  t.show_progress(!options.quiet && leader);
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
  if (group)
    trainer.SetDistributedGroup(group);
  std::string model;
  try
  {
    model = trainer.Run(*data);
  }
  catch (const agcl::ModelBundleError & e)
  {
    throw InputError(e.what());
  }
  if (!leader)
    return kSuccess; // rank 0 reports and calibrates the model
  if (group)
    std::cout << "processes: " << group->Size() << " (global batch split between them)\n";
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
  if ((t.stage() < 0 || t.stage() == 2) && config.image_dimensions == 2)
    std::cout << "2D model: no calibration statistics (the organ volume and extent ranges are for volumes)\n";
  else if (t.stage() < 0 || t.stage() == 2)
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
  sub
    ->add_option("--decoder-dice",
                 t.decoder_dice(),
                 "stage 2 loss includes the Dice loss (true/false; false with --decoder-ce true: cross-entropy "
                 "alone, as the paper's PASCAL VOC table)")
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
  sub
    ->add_option("--nproc",
                 options->nproc,
                 "start this many local processes that train together (distributed data parallel on c10d/Gloo over "
                 "127.0.0.1); under torchrun, SLURM or a PyTorchJob leave it out: RANK, WORLD_SIZE, MASTER_ADDR and "
                 "MASTER_PORT from the environment are used")
    ->capture_default_str();
  sub->add_option("--dist-backend", options->distBackend, "distributed backend: gloo (CPU) or nccl (CUDA builds)")
    ->capture_default_str();
  sub
    ->add_option("--dist-timeout",
                 options->distTimeout,
                 "seconds a rank waits for the others (rendezvous, each collective) before it stops with an error")
    ->capture_default_str();
  sub->callback([options, &runner] { runner = [options] { return Run(*options); }; });
}

} // namespace agcl::cli
