/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "TrainingRun.h"

#include "agcl/AtomicFile.h"
#include "agcl/JsonInput.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include <unistd.h>

namespace agcl::detail {
namespace {

namespace fs = std::filesystem;

// Keeps the lines of the log at `path` that come before (stage, step): earlier stages, and this
// stage's lines up to `step` (0: none of this stage). Unreadable lines (a crash mid-write) go.
void
TrimLog(const fs::path & path, int stage, int64_t step)
{
  std::ifstream            in(path);
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);)
  {
    if (JsonNestingDepth(line) > kMaxJsonDepth)
      continue; // not a line the trainer wrote
    const auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_discarded() || !entry.is_object() || !entry.contains("stage") || !entry.contains("step"))
      continue;
    const int     lineStage = entry.at("stage").get<int>();
    const int64_t lineStep = entry.at("step").get<int64_t>();
    if (lineStage < stage || (lineStage == stage && lineStep <= step))
      kept.push_back(line);
  }
  in.close();
  // Replaced whole (never truncated in place): a crash here leaves the old log, which the next
  // resume trims again.
  std::string text;
  for (const auto & line : kept)
    text += line + '\n';
  WriteTextAtomically(path, text);
}

// The log's lines so far on disk: flushed, checked and fsync'ed (before each checkpoint, so that
// a checkpoint never refers to steps whose log lines a power loss could take).
void
SyncLog(std::ofstream & log, const fs::path & path)
{
  log.flush();
  if (!log)
    throw std::runtime_error("AGCLTrainer: cannot write '" + path.string() + "' (disk full?)");
  if (!SyncFile(path))
    throw std::runtime_error("AGCLTrainer: cannot fsync '" + path.string() + "': " + std::strerror(errno));
}

std::string
FormatSeconds(double seconds)
{
  const auto         s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  std::ostringstream os;
  os << s / 3600 << ':' << std::setw(2) << std::setfill('0') << (s / 60) % 60 << ':' << std::setw(2)
     << std::setfill('0') << s % 60;
  return os.str();
}

PatchSet
Concatenate(const std::vector<PatchSet> & sets)
{
  std::vector<at::Tensor> image, mask, organ, modality;
  for (const auto & s : sets)
    if (s.Size() > 0)
    {
      image.push_back(s.image);
      mask.push_back(s.mask);
      organ.push_back(s.organ);
      modality.push_back(s.modality);
    }
  PatchSet out;
  if (!image.empty())
  {
    out.image = torch::cat(image);
    out.mask = torch::cat(mask);
    out.organ = torch::cat(organ);
    out.modality = torch::cat(modality);
  }
  return out;
}

// `count` rows of `patches` for the step whose stream is `seed`.
Batch
MakeBatch(const PatchSet & patches, int64_t count, uint64_t seed, const PairedAugmentation * augmentation)
{
  at::Generator    generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor index = torch::randint(patches.Size(), { count }, generator, torch::kLong);
  Batch            batch{ patches.image.index_select(0, index),
               patches.mask.index_select(0, index),
               patches.organ.index_select(0, index),
               patches.modality.index_select(0, index) };
  if (augmentation)
    batch.image = augmentation->Forward(batch.image, seed ^ 0x5DEECE66DULL);
  return batch;
}

const char *
StepsOptionOf(int stage)
{
  return stage == 0 ? "--coarse-steps" : stage == 1 ? "--pretrain-steps" : "--decoder-steps";
}

} // namespace

uint64_t
StepSeed(uint64_t seed, int stage, int64_t step, uint64_t stream)
{
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(stage) + 1)) ^
               (0xBF58476D1CE4E5B9ULL * static_cast<uint64_t>(step + 1)) ^ (0x94D049BB133111EBULL * (stream + 1));
  // splitmix64 finaliser
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return (x ^ (x >> 31)) & 0x7FFFFFFFFFFFFFFFULL; // manual_seed wants a value that fits int64
}

double
LearningRate(double base, int64_t step, int64_t steps, double warmupFraction)
{
  const int64_t warmup = static_cast<int64_t>(std::ceil(warmupFraction * steps));
  if (step < warmup)
    return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double progress = static_cast<double>(step - warmup) / std::max<int64_t>(1, steps - warmup);
  return base * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

std::vector<at::Tensor>
Trainable(const std::vector<torch::nn::Module *> & modules)
{
  std::vector<at::Tensor> out;
  for (auto * m : modules)
    for (const auto & p : m->parameters())
      if (p.requires_grad())
        out.push_back(p);
  return out;
}

TrainingRun::TrainingRun(const AGCLTrainerOptions &                    options_,
                         AGCLModel &                                   model_,
                         TrainingData &                                data_,
                         std::filesystem::path                         directory_,
                         WritePointHook                                checkpointHook,
                         std::function<void(const TrainingProgress &)> progress)
  : options(options_)
  , model(model_)
  , data(data_)
  , directory(std::move(directory_))
  , m_CheckpointHook(std::move(checkpointHook))
  , m_Progress(std::move(progress))
{}

void
TrainingRun::Require(bool condition, const std::string & message)
{
  if (!condition)
    throw std::invalid_argument("AGCLTrainer: " + message);
}

void
TrainingRun::OpenLog(bool continuing)
{
  const fs::path path = directory / "log.jsonl";
  // A resumed run keeps the lines up to its checkpoint (a crash after the checkpoint left lines
  // that the resumed run writes again).
  if (continuing)
    TrimLog(path, stage, step);
  m_Log.open(path, continuing ? std::ios::app : std::ios::trunc);
  Require(static_cast<bool>(m_Log), "cannot write '" + path.string() + "'");
  m_Terminal = options.show_progress() && isatty(fileno(stderr));
}

void
TrainingRun::Log(const nlohmann::json & line)
{
  if (m_Log.is_open()) // rank 0 only
    m_Log << line.dump() << '\n' << std::flush;
}

void
TrainingRun::Emit(const TrainingProgress & p, const nlohmann::json & extra)
{
  nlohmann::json line = { { "stage", p.stage },      { "step", p.step },
                          { "steps", p.steps },      { "loss", p.loss },
                          { "lr", p.learning_rate }, { "patches_per_s", p.patches_per_second },
                          { "eta_s", p.eta_seconds } };
  line.update(extra);
  Log(line);
  if (options.show_progress() && Leader())
  {
    std::ostringstream text;
    text << "stage " << p.stage << "  " << p.step << "/" << p.steps << "  loss " << std::fixed << std::setprecision(4)
         << p.loss << "  lr " << std::scientific << std::setprecision(2) << p.learning_rate << std::fixed
         << std::setprecision(1) << "  " << p.patches_per_second << " patches/s  ETA " << FormatSeconds(p.eta_seconds);
    if (m_Terminal)
    {
      const int width = 24;
      const int filled = p.steps > 0 ? static_cast<int>(width * p.step / p.steps) : width;
      std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << text.str() << "   "
                << (p.step == p.steps ? "\n" : "") << std::flush;
    }
    else
      std::cerr << text.str() << std::endl;
  }
  if (m_Progress && Leader())
    m_Progress(p);
}

void
TrainingRun::Report(int64_t stageSteps, double loss, double learningRate)
{
  const auto       now = Clock::now();
  const double     interval = std::chrono::duration<double>(now - m_IntervalStart).count();
  const double     elapsed = std::chrono::duration<double>(now - m_StageStart).count();
  TrainingProgress p;
  p.stage = stage;
  p.step = step;
  p.steps = stageSteps;
  p.loss = loss;
  p.learning_rate = learningRate;
  p.patches_per_second = interval > 0 ? m_IntervalInputs / interval : 0.0;
  const int64_t done = step - m_StageStartStep;
  p.eta_seconds = done > 0 ? elapsed / done * (stageSteps - step) : 0.0;
  nlohmann::json traffic = nlohmann::json::object();
  if (group->Size() > 1)
  {
    // Rank 0's collectives per step over the interval (bytes it sent into each, wall time in it).
    const auto   t = group->TrafficSinceReset();
    const double n = static_cast<double>(std::max<int64_t>(1, step - m_IntervalStartStep));
    traffic = { { "allreduce_bytes_per_step", t.allReduceBytes / n },
                { "allreduce_s_per_step", t.allReduceSeconds / n },
                { "allgather_bytes_per_step", t.allGatherBytes / n },
                { "allgather_s_per_step", t.allGatherSeconds / n } };
    group->ResetTraffic();
  }
  m_IntervalStartStep = step;
  Emit(p, traffic);
  m_IntervalStart = now;
  m_IntervalInputs = 0;
}

void
TrainingRun::WriteCheckpoint(const AdamOptimizer * optimizer, torch::nn::Module * auxiliary, const ModelBundle * best)
{
  if (!Leader()) // every rank holds the same weights and optimizer state; rank 0 writes them
    return;
  ModelBundle bundle = model.ToBundle();
  bundle.config["trainer"] = { { "stage", stage },
                               { "step", step },
                               { "best_dice", bestDice },
                               { "options", Fingerprint(options) },
                               { "labelled_subjects", labelledNames },
                               { "subjects", dataFingerprint },
                               { "world_size", group->Size() } };
  if (optimizer)
    optimizer->Save(bundle, "adam");
  if (auxiliary)
    bundle.AddModule("auxiliary", *auxiliary);
  if (best)
    for (const auto & [name, tensor] : best->Tensors())
      bundle.Add("best." + name, tensor);
  SyncLog(m_Log, directory / "log.jsonl");
  bundle.Save(AGCLTrainer::CheckpointPath(directory.string()), m_CheckpointHook);
}

void
TrainingRun::ResumeInto(AdamOptimizer & optimizer, torch::nn::Module * auxiliary)
{
  if (!haveCheckpoint || step == 0)
    return;
  optimizer.Load(checkpoint, "adam");
  if (auxiliary)
    checkpoint.LoadInto("auxiliary", *auxiliary);
}

void
TrainingRun::FinishStage()
{
  stage = options.stage() >= 0 ? 3 : stage + 1; // a single-stage run ends after its stage
  step = 0;
  haveCheckpoint = false;
  WriteCheckpoint(nullptr, nullptr, nullptr);
}

void
TrainingRun::RunSteps(int                                                 stageNumber,
                      int64_t                                             stageSteps,
                      double                                              baseLearningRate,
                      AdamOptimizer &                                     optimizer,
                      const std::function<std::pair<double, int64_t>()> & computeLoss,
                      const std::function<void()> &                       afterStep,
                      const std::function<void()> &                       writeCheckpoint)
{
  m_StageStart = m_IntervalStart = Clock::now();
  m_StageStartStep = m_IntervalStartStep = step;
  m_IntervalInputs = 0;
  group->ResetTraffic();
  std::vector<double> losses; // this run's losses of the stage (a resumed run: since the resume)
  while (step < stageSteps)
  {
    const double lr = LearningRate(baseLearningRate, step, stageSteps, options.warmup_fraction());
    optimizer.ZeroGrad();
    auto [loss, inputs] = computeLoss();
    if (group->Size() > 1)
    {
      // Every rank sees the same loss (and stops together on a non-finite one), then the
      // gradients are combined before the (identical) optimizer steps.
      std::vector<at::Tensor> values{ torch::tensor({ loss, static_cast<double>(inputs) }, torch::kDouble) };
      group->AllReduce(values, Reduction::Sum);
      loss = values[0][0].item<double>() / (gradientReduction == Reduction::Mean ? group->Size() : 1);
      inputs = static_cast<int64_t>(values[0][1].item<double>());
      if (std::isfinite(loss))
        AllReduceGradients(synchronised, *group, gradientReduction);
    }
    Require(std::isfinite(loss),
            "stage " + std::to_string(stageNumber) + ": the loss became " + std::to_string(loss) + " at step " +
              std::to_string(step) + " (learning rate too high?)");
    optimizer.Step(lr);
    if (group->Size() > 1)
      AverageBuffers();
    losses.push_back(loss);
    ++step;
    m_IntervalInputs += inputs;
    if (step % options.log_every() == 0 || step == stageSteps)
      Report(stageSteps, loss, lr);
    if (afterStep)
      afterStep();
    if (step % options.checkpoint_every() == 0 && step < stageSteps)
      writeCheckpoint();
  }
  // Did the loss level off? (CheckConvergence: how much of the stage's fall came in its second half.)
  const Convergence c = CheckConvergence(losses);
  if (!c.checked)
    return;
  Log({ { "stage", stageNumber },
        { "step", step },
        { "converged", c.converged },
        { "loss_first_tenth", c.first },
        { "loss_middle_tenth", c.middle },
        { "loss_last_tenth", c.last } });
  if (!c.converged)
  {
    if (Leader())
      std::cerr << "agcl: warning: stage " << stageNumber << " stopped before its loss levelled off (mean loss of the "
                << "first, middle and last tenth of its " << stageSteps << " steps: " << c.first << ", " << c.middle
                << ", " << c.last << ": the second half still brought more than 20% of the fall); more steps ("
                << StepsOptionOf(stageNumber) << ") would likely help" << std::endl;
    unconverged.push_back(stageNumber);
  }
}

PatchSet
TrainingRun::Pool(const std::vector<size_t> & poolSubjects, AttentionSource source)
{
  if (m_HaveLastPool && m_LastPoolSubjects == poolSubjects && m_LastPoolSource == source)
    return m_LastPool;
  std::vector<PatchSet> sets;
  for (size_t i : poolSubjects)
  {
    PatchSet s = data.Patches(
      i, source, model, device, options.patches_per_organ(), StepSeed(options.seed(), 9, static_cast<int64_t>(i)));
    if (s.Size() > 0)
    {
      s.organ = s.organ.to(torch::kLong);
      s.modality = s.modality.to(torch::kLong);
      s.mask = s.mask.to(torch::kLong);
    }
    sets.push_back(std::move(s));
  }
  m_LastPool = Concatenate(sets);
  m_LastPoolSubjects = poolSubjects;
  m_LastPoolSource = source;
  m_HaveLastPool = true;
  return m_LastPool;
}

std::function<Batch()>
TrainingRun::Batches(const PatchSet &           patches,
                     int                        stageNumber,
                     int64_t                    batchSize,
                     int64_t                    stageSteps,
                     const PairedAugmentation * augmentation)
{
  const int64_t     count = std::min<int64_t>(batchSize, patches.Size());
  const PatchSet *  pool = &patches;
  const uint64_t    seed = options.seed();
  const std::launch policy = options.prefetch() ? std::launch::async : std::launch::deferred;
  auto              start = [pool, seed, stageNumber, count, augmentation, policy](int64_t at) {
    return std::async(policy, MakeBatch, std::cref(*pool), count, StepSeed(seed, stageNumber, at, 1), augmentation);
  };
  auto pending = std::make_shared<std::future<Batch>>(start(step));
  // Distributed: every rank draws the same global batch and keeps its contiguous share of the
  // patches (both views of each in stage 1): ranks 0..W-1 take [r n / W, (r + 1) n / W).
  const int64_t rank = group->Rank(), ranks = group->Size();
  Require(count >= ranks,
          "stage " + std::to_string(stageNumber) + ": " + std::to_string(count) + " patches per step (batch size " +
            std::to_string(batchSize) + ", pool " + std::to_string(patches.Size()) + ") for " + std::to_string(ranks) +
            " processes: each needs at least one");
  const int64_t first = rank * count / ranks, last = (rank + 1) * count / ranks;
  return [this, start, pending, stageSteps, count, first, last, ranks]() {
    Batch batch = pending->get();
    if (step + 1 < stageSteps)
      *pending = start(step + 1);
    batch.total = count;
    if (ranks > 1)
    {
      const int64_t n = last - first;
      batch.image = batch.image.size(0) == 2 * count
                      ? torch::cat({ batch.image.narrow(0, first, n), batch.image.narrow(0, count + first, n) })
                      : batch.image.narrow(0, first, n);
      batch.mask = batch.mask.narrow(0, first, n);
      batch.organ = batch.organ.narrow(0, first, n);
      batch.modality = batch.modality.narrow(0, first, n);
      batch.first = first;
    }
    return batch;
  };
}

std::array<torch::nn::Module *, 3>
TrainingRun::ModelModules() const
{
  return { model.Coarse().get(), model.Encoder().get(), model.Decoder().get() };
}

void
TrainingRun::BroadcastModel(torch::nn::Module * extra)
{
  if (group->Size() == 1)
    return;
  std::vector<at::Tensor>          tensors;
  std::vector<torch::nn::Module *> modules;
  for (torch::nn::Module * m : ModelModules())
    modules.push_back(m);
  if (extra)
    modules.push_back(extra);
  for (torch::nn::Module * m : modules)
  {
    for (const auto & p : m->parameters())
      tensors.push_back(p);
    for (const auto & b : m->buffers())
      tensors.push_back(b);
  }
  BroadcastTensors(tensors, *group);
}

void
TrainingRun::AverageBuffers()
{
  std::vector<at::Tensor> buffers;
  for (torch::nn::Module * m : ModelModules())
    for (const auto & b : m->buffers())
      if (at::isFloatingType(b.scalar_type()))
        buffers.push_back(b);
  if (buffers.empty())
    return;
  // Averaged in double precision (the buffers are small next to the gradients).
  torch::NoGradGuard      noGrad;
  std::vector<at::Tensor> doubles;
  for (const auto & b : buffers)
    doubles.push_back(b.to(torch::kDouble));
  AllReduceTensors(doubles, *group, Reduction::Mean);
  for (size_t k = 0; k < buffers.size(); ++k)
    buffers[k].copy_(doubles[k]);
}

} // namespace agcl::detail
