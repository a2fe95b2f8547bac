/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AGCLTrainer.h"

#include "agcl/AGCLModel.h"
#include "agcl/AdamOptimizer.h"
#include "agcl/BuildInfo.h"
#include "agcl/AtomicFile.h"
#include "agcl/CheckpointState.h"
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/Device.h"
#include "agcl/DiceLoss.h"
#include "agcl/JsonInput.h"
#include "agcl/ModalityOrganClassifier.h"
#include "agcl/PairedAugmentation.h"
#include "agcl/ProjectionHead.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace agcl {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A well-mixed 64-bit value of (seed, stage, step, stream): every random draw of a step derives
// from it, so a step's randomness does not depend on what ran before it (resume, prefetching).
uint64_t
StepSeed(uint64_t seed, int stage, int64_t step, uint64_t stream = 0)
{
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(stage) + 1)) ^
               (0xBF58476D1CE4E5B9ULL * static_cast<uint64_t>(step + 1)) ^ (0x94D049BB133111EBULL * (stream + 1));
  // splitmix64 finaliser
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return (x ^ (x >> 31)) & 0x7FFFFFFFFFFFFFFFULL; // manual_seed wants a value that fits int64
}

// Linear warm-up then cosine decay to 0 (step = steps already done).
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
      [](AGCLTrainerOptions & o, const nlohmann::json & v) { o.mode(ParsePretrainingMode(v.get<std::string>())); } },
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
    AGCL_PLAIN_OPTION(decoder_cross_entropy),
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

// The settings that must not change between a run and its resumption: all but these.
nlohmann::json
Fingerprint(const AGCLTrainerOptions & o)
{
  nlohmann::json fingerprint = OptionsToJson(o);
  for (const char * mayChange :
       { "stage", "resume", "device", "checkpoint_every", "log_every", "prefetch", "show_progress" })
    fingerprint.erase(mayChange);
  return fingerprint;
}

// An exclusive lock on `directory`/run.lock for the life of the object (flock: released by the
// kernel when the process ends, even by SIGKILL, so a crashed run never leaves a stale lock).
// The holder's pid is written into the file so that a second run can name it.
class RunLock
{
public:
  explicit RunLock(const fs::path & directory)
  {
    const fs::path path = directory / "run.lock";
    m_Fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_Fd < 0)
      throw std::invalid_argument("AGCLTrainer: cannot create '" + path.string() + "': " + std::strerror(errno));
    if (::flock(m_Fd, LOCK_EX | LOCK_NB) != 0)
    {
      const int  code = errno;
      char       text[32] = {};
      const auto n = ::pread(m_Fd, text, sizeof(text) - 1, 0);
      ::close(m_Fd);
      std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string("unknown");
      holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
      throw std::invalid_argument(code == EWOULDBLOCK
                                    ? "AGCLTrainer: another run (process " + holder + ") is using '" +
                                        directory.string() + "'; wait for it or choose another output directory"
                                    : "AGCLTrainer: cannot lock '" + path.string() + "': " + std::strerror(code));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(m_Fd, 0) != 0 || ::pwrite(m_Fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    {
      ::close(m_Fd);
      throw std::invalid_argument("AGCLTrainer: cannot write '" + path.string() + "'");
    }
  }
  ~RunLock() { ::close(m_Fd); }
  RunLock(const RunLock &) = delete;
  RunLock &
  operator=(const RunLock &) = delete;

private:
  int m_Fd = -1;
};

// The first key path ("coarse.spacing_mm") where two configurations' JSON differ, provenance
// and trainer state aside; "" when they are equal.
std::string
FirstDifference(const nlohmann::json & a, const nlohmann::json & b, const std::string & path = "")
{
  if (!a.is_object() || !b.is_object())
    return a == b ? "" : (path.empty() ? "(the whole configuration)" : path);
  std::set<std::string> keys;
  for (const auto & item : a.items())
    keys.insert(item.key());
  for (const auto & item : b.items())
    keys.insert(item.key());
  for (const auto & key : keys)
  {
    if (path.empty() && (key == "provenance" || key == "trainer"))
      continue;
    const std::string where = path.empty() ? key : path + "." + key;
    if (!a.contains(key) || !b.contains(key))
      return where;
    if (std::string d = FirstDifference(a.at(key), b.at(key), where); !d.empty())
      return d;
  }
  return "";
}

// The value at a FirstDifference path, as JSON text ("absent" when missing).
std::string
ValueAt(const nlohmann::json & json, const std::string & path)
{
  std::string pointer = "/" + path;
  std::replace(pointer.begin(), pointer.end(), '.', '/');
  const nlohmann::json::json_pointer at(pointer);
  return json.contains(at) ? json.at(at).dump() : "absent";
}

// What a checkpoint records of the training data, to refuse resuming on other data: each
// subject's name, modality, split and whether it is labelled, in the data's order.
nlohmann::json
DataFingerprint(const std::vector<TrainingSubject> & subjects, const ModelConfig & config)
{
  nlohmann::json rows = nlohmann::json::array();
  for (const auto & s : subjects)
    rows.push_back({ s.name,
                     s.modality >= 0 && s.modality < static_cast<int64_t>(config.modalities.size())
                       ? config.modalities[s.modality]
                       : std::to_string(s.modality),
                     s.split,
                     s.labelled });
  return rows;
}

void
CopyModule(torch::nn::Module & target, const torch::nn::Module & source)
{
  torch::NoGradGuard noGrad;
  auto               targetParameters = target.parameters(), sourceParameters = source.parameters();
  for (size_t i = 0; i < targetParameters.size(); ++i)
    targetParameters[i].copy_(sourceParameters[i]);
  auto targetBuffers = target.buffers(), sourceBuffers = source.buffers();
  for (size_t i = 0; i < targetBuffers.size(); ++i)
    targetBuffers[i].copy_(sourceBuffers[i]);
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

at::Tensor
CoarseClassWeights(const at::Tensor & counts)
{
  const at::Tensor n = counts.to(torch::kDouble);
  if (!(n.dim() == 1 && n.ge(0).all().item<bool>() && n.sum().item<double>() > 0))
    throw std::invalid_argument("CoarseClassWeights: expected [C] non-negative counts, not all 0");
  const at::Tensor share = n / n.sum();
  const at::Tensor weights = torch::where(n.gt(0), share.clamp_min(1e-300).pow(-0.5), torch::zeros_like(share));
  return weights / (weights * share).sum();
}

// Everything a run carries between its parts.
struct AGCLTrainer::State
{
  c10::Device                  device{ torch::kCPU };
  std::vector<TrainingSubject> subjects;
  std::vector<size_t>          labelled;    // stage 0 and 2 subjects
  std::vector<size_t>          pretraining; // stage 1 subjects
  std::vector<size_t>          validation;
  int                          stage = 0;  // the stage to run next
  int64_t                      step = 0;   // its steps already done
  ModelBundle                  checkpoint; // loaded when resuming
  bool                         haveCheckpoint = false;
  bool                         resumed = false; // a checkpoint was loaded (its config and data were checked)
  nlohmann::json               dataFingerprint; // DataFingerprint of the subjects, kept in every checkpoint
  nlohmann::json               savedSubjects;   // the checkpoint's DataFingerprint (resume)
  std::ofstream                log;
  bool                         terminal = false;
  Clock::time_point            intervalStart;
  int64_t                      intervalInputs = 0;
  Clock::time_point            stageStart;
  int64_t                      stageStartStep = 0;
};

AGCLTrainer::AGCLTrainer(AGCLTrainerOptions options)
  : m_Options(std::move(options))
{}

AGCLTrainer::~AGCLTrainer() = default;

void
AGCLTrainer::SetProgressCallback(std::function<void(const TrainingProgress &)> callback)
{
  m_Progress = std::move(callback);
}

void
AGCLTrainer::SetCheckpointHook(WritePointHook hook)
{
  m_CheckpointHook = std::move(hook);
}

AGCLModel &
AGCLTrainer::Model()
{
  if (!m_Model)
    throw std::logic_error("AGCLTrainer::Model: no model before Run");
  return *m_Model;
}

std::string
AGCLTrainer::CheckpointPath(const std::string & directory)
{
  return (fs::path(directory) / "checkpoint.agcl").string();
}

std::string
AGCLTrainer::Run(TrainingData & data)
{
  const AGCLTrainerOptions & o = m_Options;
  auto                       require = [](bool condition, const std::string & message) {
    if (!condition)
      throw std::invalid_argument("AGCLTrainer: " + message);
  };
  require(o.stage() >= -1 && o.stage() <= 2, "stage = " + std::to_string(o.stage()) + ": expected -1 (all), 0, 1 or 2");
  require(o.label_fraction() > 0.0 && o.label_fraction() <= 1.0, "label_fraction must be in (0, 1]");
  require(o.temperature() > 0.0, "temperature must be > 0");
  for (auto [name, value] : { std::pair{ "coarse_steps", o.coarse_steps() },
                              std::pair{ "pretraining_steps", o.pretraining_steps() },
                              std::pair{ "decoder_steps", o.decoder_steps() } })
    require(value >= -1, std::string(name) + " must be >= 0, or -1 (auto: sized to the cohort)");
  require(o.validate_every() >= 1 || o.validate_every() == -1,
          "validate_every must be >= 1, or -1 (auto: 20 validations per stage 2)");
  for (auto [name, value] : { std::pair{ "coarse_batch_size", o.coarse_batch_size() },
                              std::pair{ "pretraining_batch_size", o.pretraining_batch_size() },
                              std::pair{ "decoder_batch_size", o.decoder_batch_size() },
                              std::pair{ "patches_per_organ", o.patches_per_organ() },
                              std::pair{ "checkpoint_every", o.checkpoint_every() },
                              std::pair{ "log_every", o.log_every() },
                              std::pair{ "projection_features", o.projection_features() } })
    require(value >= 1, std::string(name) + " must be >= 1");
  for (auto [name, value] : { std::pair{ "coarse_learning_rate", o.coarse_learning_rate() },
                              std::pair{ "pretraining_learning_rate", o.pretraining_learning_rate() },
                              std::pair{ "decoder_learning_rate", o.decoder_learning_rate() } })
    require(value > 0.0, std::string(name) + " must be > 0");
  require(o.warmup_fraction() >= 0.0 && o.warmup_fraction() < 1.0, "warmup_fraction must be in [0, 1)");
  require(o.weight_decay() >= 0.0, "weight_decay must be >= 0");

  State state;
  state.device = ParseDevice(o.device());
  const fs::path directory = o.output_directory();
  fs::create_directories(directory);
  const RunLock lock(directory); // before anything in the folder is read or written
  // What killed runs left half-written (their temporary files); no other run can be writing.
  for (const char * name : { "checkpoint.agcl", "model.agcl", "settings.json", "log.jsonl" })
    RemoveStaleTemporaries(directory / name);
  const std::string checkpointPath = CheckpointPath(directory.string());

  // The model: from the checkpoint (resume), from init_from, or new.
  if (o.resume() && fs::exists(checkpointPath))
  {
    state.checkpoint = ModelBundle::Load(checkpointPath);
    state.haveCheckpoint = true;
    const CheckpointState saved = ReadCheckpointState(state.checkpoint.config, checkpointPath); // checked
    const nlohmann::json  expected = Fingerprint(o);
    for (const auto & [key, value] : expected.items())
    {
      if (!saved.options.contains(key) || saved.options.at(key) != value)
        throw std::invalid_argument("AGCLTrainer: cannot resume '" + checkpointPath + "': option '" + key + "' is " +
                                    value.dump() + " here but " + saved.options.value(key, nlohmann::json()).dump() +
                                    " in the checkpoint");
    }
    // The configuration this run would build (from init_from, else the options') must be the
    // checkpoint's: a resume never silently takes another one.
    const nlohmann::json given =
      (o.init_from().empty() ? o.model() : ModelConfig::FromJson(ModelBundle::Load(o.init_from()).config)).ToJson();
    const nlohmann::json savedConfig = ModelConfig::FromJson(state.checkpoint.config).ToJson();
    if (const std::string key = FirstDifference(given, savedConfig); !key.empty())
      throw std::invalid_argument("AGCLTrainer: cannot resume '" + checkpointPath +
                                  "': the model configuration differs at '" + key + "': " + ValueAt(given, key) +
                                  " here but " + ValueAt(savedConfig, key) + " in the checkpoint");
    m_Model = std::make_shared<AGCLModel>(AGCLModel::FromBundle(state.checkpoint));
    state.resumed = true;
    state.stage = saved.stage;
    state.step = saved.step;
    m_BestDice = saved.best_dice;
    state.savedSubjects = saved.subjects;
  }
  else
  {
    require(o.resume() || !fs::exists(checkpointPath),
            "'" + checkpointPath + "' exists: pass resume to continue it, or choose another output directory");
    torch::manual_seed(o.seed()); // the new networks' initial weights
    m_Model =
      std::make_shared<AGCLModel>(o.init_from().empty() ? AGCLModel(o.model()) : AGCLModel::Load(o.init_from()));
    state.stage = o.stage() < 0 ? 0 : o.stage();
  }
  if (o.stage() >= 0 && state.stage != o.stage())
  {
    // A single stage on top of a checkpoint that ended elsewhere: start that stage afresh.
    state.stage = o.stage();
    state.step = 0;
    state.haveCheckpoint = false;
  }
  const ModelConfig & config = m_Model->Config();
  m_Model->Coarse()->to(state.device);
  m_Model->Encoder()->to(state.device);
  m_Model->Decoder()->to(state.device);

  // Subjects: labelled training subjects (label fraction), stage-1 subjects, validation.
  state.subjects = data.Subjects();
  state.dataFingerprint = DataFingerprint(state.subjects, config);
  if (state.resumed)
  {
    const nlohmann::json & given = state.dataFingerprint;
    const nlohmann::json & saved = state.savedSubjects;
    if (given != saved)
    {
      std::string what = "the checkpoint records no subjects (written by an older version)";
      if (saved.is_array())
      {
        size_t row = 0;
        while (row < given.size() && row < saved.size() && given[row] == saved[row])
          ++row;
        what = row < given.size() && row < saved.size()
                 ? "subject " + std::to_string(row + 1) + " is " + given[row].dump() + " here but " +
                     saved[row].dump() + " in the checkpoint"
                 : std::to_string(given.size()) + " subjects here but " + std::to_string(saved.size()) +
                     " in the checkpoint";
      }
      throw std::invalid_argument("AGCLTrainer: cannot resume '" + checkpointPath +
                                  "': the training data differ ([name, modality, split, labelled]): " + what);
    }
  }
  std::vector<size_t> labelledTraining;
  for (size_t i = 0; i < state.subjects.size(); ++i)
  {
    const TrainingSubject & s = state.subjects[i];
    require(s.modality >= 0 && s.modality < static_cast<int64_t>(config.modalities.size()),
            "subject '" + s.name + "': modality index " + std::to_string(s.modality) + " outside the config's " +
              std::to_string(config.modalities.size()) + " modalities");
    if (s.split == "train")
    {
      if (s.labelled)
        labelledTraining.push_back(i);
      const bool modalityWanted = o.pretraining_modalities().empty() ||
                                  std::find(o.pretraining_modalities().begin(),
                                            o.pretraining_modalities().end(),
                                            config.modalities[s.modality]) != o.pretraining_modalities().end();
      if (modalityWanted)
        state.pretraining.push_back(i);
    }
    else if (s.split == "val" && s.labelled)
      state.validation.push_back(i);
  }
  for (const auto & name : o.pretraining_modalities())
    require(std::find(config.modalities.begin(), config.modalities.end(), name) != config.modalities.end(),
            "pretraining_modalities: '" + name + "' is not one of the model's modalities");
  require(!labelledTraining.empty(), "no labelled training subjects (split 'train' with a label map)");
  {
    // The label fraction picks subjects, not rows: all rows (e.g. both phases) of a chosen
    // subject are labelled, the others serve stage 1 only.
    std::vector<std::string> names;
    for (size_t i : labelledTraining)
      if (std::find(names.begin(), names.end(), state.subjects[i].name) == names.end())
        names.push_back(state.subjects[i].name);
    std::mt19937_64 rng(o.seed());
    std::shuffle(names.begin(), names.end(), rng);
    const auto count =
      std::max<size_t>(1, static_cast<size_t>(std::llround(o.label_fraction() * static_cast<double>(names.size()))));
    names.resize(std::min(count, names.size()));
    for (size_t i : labelledTraining)
      if (std::find(names.begin(), names.end(), state.subjects[i].name) != names.end())
        state.labelled.push_back(i);
  }
  m_Labelled.clear();
  m_Unconverged.clear();
  for (size_t i : state.labelled)
    if (std::find(m_Labelled.begin(), m_Labelled.end(), state.subjects[i].name) == m_Labelled.end())
      m_Labelled.push_back(state.subjects[i].name);
  const bool allLabelled =
    state.labelled.size() == labelledTraining.size() &&
    labelledTraining.size() ==
      static_cast<size_t>(std::count_if(
        state.subjects.begin(), state.subjects.end(), [](const TrainingSubject & s) { return s.split == "train"; }));
  const AttentionSource pretrainingAttention = allLabelled ? o.attention() : AttentionSource::Coarse;

  // Steps per stage: as given, or (-1) sized to the cohort (AutoSteps): stage 0 over the
  // labelled volumes, stages 1 and 2 over their patch pools.
  const double perVolume = static_cast<double>(config.organs.size()) * static_cast<double>(o.patches_per_organ());
  auto         stepsOf = [](int64_t option, int stage, double inputs, int64_t batch) {
    return option >= 0 ? option : AutoSteps(stage, inputs, batch);
  };
  const int64_t coarseSteps =
    stepsOf(o.coarse_steps(), 0, static_cast<double>(state.labelled.size()), o.coarse_batch_size());
  const int64_t pretrainingSteps = stepsOf(
    o.pretraining_steps(), 1, static_cast<double>(state.pretraining.size()) * perVolume, o.pretraining_batch_size());
  const int64_t decoderSteps =
    stepsOf(o.decoder_steps(), 2, static_cast<double>(state.labelled.size()) * perVolume, o.decoder_batch_size());
  m_Steps = { coarseSteps, pretrainingSteps, decoderSteps };

  // Output files.
  // A fresh run starts a new log; a resumed one keeps the lines up to its checkpoint (a crash
  // after the checkpoint left lines that the resumed run writes again).
  const bool continuing = o.resume() && fs::exists(checkpointPath); // the checkpoint was loaded
  if (continuing)
    TrimLog(directory / "log.jsonl", state.stage, state.step);
  state.log.open(directory / "log.jsonl", continuing ? std::ios::app : std::ios::trunc);
  require(static_cast<bool>(state.log), "cannot write '" + (directory / "log.jsonl").string() + "'");
  state.terminal = o.show_progress() && isatty(fileno(stderr));
  {
    nlohmann::json settings = OptionsToJson(o);
    settings["tool_version"] = Version();
    settings["output_directory"] = o.output_directory();
    settings["model"] = config.ToJson();
    settings["labelled_subjects"] = m_Labelled;
    settings["effective_steps"] = m_Steps;
    WriteTextAtomically(directory / "settings.json", settings.dump(2) + "\n"); // checked, fsync'ed, renamed
  }

  auto emit = [&](const TrainingProgress & p) {
    nlohmann::json line = { { "stage", p.stage },      { "step", p.step },
                            { "steps", p.steps },      { "loss", p.loss },
                            { "lr", p.learning_rate }, { "patches_per_s", p.patches_per_second },
                            { "eta_s", p.eta_seconds } };
    state.log << line.dump() << '\n' << std::flush;
    if (o.show_progress())
    {
      std::ostringstream text;
      text << "stage " << p.stage << "  " << p.step << "/" << p.steps << "  loss " << std::fixed << std::setprecision(4)
           << p.loss << "  lr " << std::scientific << std::setprecision(2) << p.learning_rate << std::fixed
           << std::setprecision(1) << "  " << p.patches_per_second << " patches/s  ETA "
           << FormatSeconds(p.eta_seconds);
      if (state.terminal)
      {
        const int width = 24;
        const int filled = p.steps > 0 ? static_cast<int>(width * p.step / p.steps) : width;
        std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << text.str()
                  << "   " << (p.step == p.steps ? "\n" : "") << std::flush;
      }
      else
        std::cerr << text.str() << std::endl;
    }
    if (m_Progress)
      m_Progress(p);
  };
  auto startStage = [&]() {
    state.stageStart = state.intervalStart = Clock::now();
    state.stageStartStep = state.step;
    state.intervalInputs = 0;
  };
  auto report = [&](int64_t steps, double loss, double lr) {
    const auto       now = Clock::now();
    const double     interval = std::chrono::duration<double>(now - state.intervalStart).count();
    const double     elapsed = std::chrono::duration<double>(now - state.stageStart).count();
    TrainingProgress p;
    p.stage = state.stage;
    p.step = state.step;
    p.steps = steps;
    p.loss = loss;
    p.learning_rate = lr;
    p.patches_per_second = interval > 0 ? state.intervalInputs / interval : 0.0;
    const int64_t done = state.step - state.stageStartStep;
    p.eta_seconds = done > 0 ? elapsed / done * (steps - state.step) : 0.0;
    emit(p);
    state.intervalStart = now;
    state.intervalInputs = 0;
  };

  // Checkpoint: weights, optimizer state, best weights, where we are.
  auto writeCheckpoint = [&](const AdamOptimizer * optimizer, torch::nn::Module * auxiliary, const ModelBundle * best) {
    ModelBundle bundle = m_Model->ToBundle();
    bundle.config["trainer"] = { { "stage", state.stage },
                                 { "step", state.step },
                                 { "best_dice", m_BestDice },
                                 { "options", Fingerprint(o) },
                                 { "labelled_subjects", m_Labelled },
                                 { "subjects", state.dataFingerprint } };
    if (optimizer)
      optimizer->Save(bundle, "adam");
    if (auxiliary)
      bundle.AddModule("auxiliary", *auxiliary);
    if (best)
      for (const auto & [name, tensor] : best->Tensors())
        bundle.Add("best." + name, tensor);
    SyncLog(state.log, directory / "log.jsonl");
    bundle.Save(checkpointPath, m_CheckpointHook);
  };
  // Resuming mid-stage: the checkpoint's optimizer/auxiliary state belongs to state.stage.
  auto resumeInto = [&](AdamOptimizer & optimizer, torch::nn::Module * auxiliary) {
    if (!state.haveCheckpoint || state.step == 0)
      return;
    optimizer.Load(state.checkpoint, "adam");
    if (auxiliary)
      state.checkpoint.LoadInto("auxiliary", *auxiliary);
  };
  const bool single = o.stage() >= 0;
  auto       finishStage = [&](const ModelBundle * best) {
    state.stage = single ? 3 : state.stage + 1;
    state.step = 0;
    state.haveCheckpoint = false;
    writeCheckpoint(nullptr, nullptr, best);
  };

  // The step loop every stage shares: the learning-rate schedule, the optimizer step on a finite
  // loss, logging and checkpoints. `computeLoss(lr)` runs one step's forward and backward pass
  // and returns the loss and the number of inputs it used; `afterStep` runs after each step
  // (stage 2 validates there); `checkpoint` writes a checkpoint.
  auto runSteps = [&](int                                                 stage,
                      int64_t                                             steps,
                      double                                              baseLearningRate,
                      AdamOptimizer &                                     optimizer,
                      const std::function<std::pair<double, int64_t>()> & computeLoss,
                      const std::function<void()> &                       afterStep,
                      const std::function<void()> &                       checkpoint) {
    startStage();
    std::vector<double> losses; // this run's losses of the stage (a resumed run: since the resume)
    while (state.step < steps)
    {
      const double lr = LearningRate(baseLearningRate, state.step, steps, o.warmup_fraction());
      optimizer.ZeroGrad();
      const auto [loss, inputs] = computeLoss();
      require(std::isfinite(loss),
              "stage " + std::to_string(stage) + ": the loss became " + std::to_string(loss) + " at step " +
                std::to_string(state.step) + " (learning rate too high?)");
      optimizer.Step(lr);
      losses.push_back(loss);
      ++state.step;
      state.intervalInputs += inputs;
      if (state.step % o.log_every() == 0 || state.step == steps)
        report(steps, loss, lr);
      if (afterStep)
        afterStep();
      if (state.step % o.checkpoint_every() == 0 && state.step < steps)
        checkpoint();
    }
    // Did the loss level off? (CheckConvergence: how much of the stage's fall came in its second half.)
    const Convergence c = CheckConvergence(losses);
    if (c.checked)
    {
      state.log << nlohmann::json{ { "stage", stage },
                                   { "step", state.step },
                                   { "converged", c.converged },
                                   { "loss_first_tenth", c.first },
                                   { "loss_middle_tenth", c.middle },
                                   { "loss_last_tenth", c.last } }
                     .dump()
                << '\n'
                << std::flush;
      if (!c.converged)
      {
        std::cerr << "agcl: warning: stage " << stage << " stopped before its loss levelled off (mean loss of the "
                  << "first, middle and last tenth of its " << steps << " steps: " << c.first << ", " << c.middle
                  << ", " << c.last << ": the second half still brought more than 20% of the fall); more steps ("
                  << (stage == 0   ? "--coarse-steps"
                      : stage == 1 ? "--pretrain-steps"
                                   : "--decoder-steps")
                  << ") would likely help" << std::endl;
        m_Unconverged.push_back(stage);
      }
    }
  };

  // ---------------------------------------------------------------- stage 0: coarse network
  if (state.stage == 0)
  {
    std::vector<CoarseSample> samples;
    for (size_t i : state.labelled)
    {
      CoarseSample s = data.Coarse(i, config);
      require(s.image.dim() == 3 && s.classes.sizes() == s.image.sizes(),
              "subject '" + state.subjects[i].name + "': coarse image and classes must be [D, H, W] of one shape");
      samples.push_back(std::move(s));
    }
    auto &        net = m_Model->Coarse();
    AdamOptimizer optimizer(Trainable({ net.get() }), AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
    resumeInto(optimizer, nullptr);
    DiceLoss      dice;
    const int64_t multiple = net->SizeMultiple();
    // Class weights of the cross-entropy: share^-1/2 over the labelled volumes, mean 1 per voxel.
    const int64_t classes = static_cast<int64_t>(config.organs.size()) + 1;
    at::Tensor    weights = torch::ones({ classes }, torch::kDouble);
    if (o.coarse_class_weights() && !samples.empty())
    {
      at::Tensor counts = torch::zeros({ classes }, torch::kDouble);
      for (const CoarseSample & s : samples)
        counts += torch::bincount(s.classes.flatten(), {}, classes).to(torch::kDouble);
      weights = CoarseClassWeights(counts);
    }
    weights = weights.to(torch::kFloat).to(state.device);
    const int64_t window = config.coarse_window_slices;
    net->train();
    runSteps(
      0,
      coarseSteps,
      o.coarse_learning_rate(),
      optimizer,
      [&]() -> std::pair<double, int64_t> {
        const uint64_t stepSeed = StepSeed(o.seed(), 0, state.step);
        torch::manual_seed(stepSeed);
        std::mt19937_64 rng(stepSeed);
        double          lossSum = 0.0;
        for (int64_t b = 0; b < o.coarse_batch_size(); ++b)
        {
          const CoarseSample & s = samples[rng() % samples.size()];
          const int64_t        depth = s.image.size(0);
          int64_t              first = 0, count = depth;
          if (window > 0 && depth > window)
          {
            first = static_cast<int64_t>(rng() % static_cast<uint64_t>(depth - window + 1));
            count = window;
          }
          at::Tensor           image = s.image.narrow(0, first, count);
          at::Tensor           classes = s.classes.narrow(0, first, count);
          std::vector<int64_t> padding;
          for (int d = 2; d >= 0; --d)
          {
            padding.push_back(0);
            padding.push_back((image.size(d) + multiple - 1) / multiple * multiple - image.size(d));
          }
          image = torch::constant_pad_nd(image, padding, 0.0).unsqueeze(0).unsqueeze(0).to(state.device);
          classes = torch::constant_pad_nd(classes, padding, 0).unsqueeze(0).to(state.device);
          const at::Tensor logits = net->forward(image);
          const at::Tensor loss =
            (dice(logits, classes) +
             torch::nn::functional::cross_entropy(
               logits, classes, torch::nn::functional::CrossEntropyFuncOptions().weight(weights))) /
            static_cast<double>(o.coarse_batch_size());
          loss.backward();
          lossSum += loss.item<double>();
        }
        return { lossSum, o.coarse_batch_size() };
      },
      nullptr,
      [&] { writeCheckpoint(&optimizer, nullptr, nullptr); });
    net->eval();
    // Dice of the coarse network on the val subjects' coarse grids, pooled per organ (sums of
    // overlaps over sums of sizes), mean over the organs that occur: how good the attention
    // that stages 1-2 and inference get is.
    if (!state.validation.empty())
    {
      const int64_t O = static_cast<int64_t>(config.organs.size());
      at::Tensor    overlap = torch::zeros({ O + 1 }, torch::kDouble), size = torch::zeros({ O + 1 }, torch::kDouble);
      for (size_t i : state.validation)
      {
        const CoarseSample s = data.Coarse(i, config);
        const at::Tensor   predicted = m_Model->PredictCoarseClasses(s.image, state.device).to(torch::kLong).flatten();
        const at::Tensor   truth = s.classes.flatten();
        overlap.index_add_(0, truth, predicted.eq(truth).to(torch::kDouble));
        size.index_add_(0, truth, torch::ones_like(truth, torch::kDouble));
        size.index_add_(0, predicted, torch::ones_like(predicted, torch::kDouble));
      }
      const at::Tensor present = size.slice(0, 1).gt(0);
      m_CoarseDice = (2.0 * overlap.slice(0, 1).masked_select(present) / size.slice(0, 1).masked_select(present))
                       .mean()
                       .item<double>();
      state.log << nlohmann::json{ { "stage", 0 }, { "step", state.step }, { "coarse_val_dice", m_CoarseDice } }.dump()
                << '\n'
                << std::flush;
    }
    finishStage(nullptr);
  }

  // Patch pools: the same seed per subject in every stage, so a resumed run draws the same ones.
  auto pool = [&](const std::vector<size_t> & subjects, AttentionSource source) {
    std::vector<PatchSet> sets;
    for (size_t i : subjects)
    {
      PatchSet s = data.Patches(
        i, source, *m_Model, state.device, o.patches_per_organ(), StepSeed(o.seed(), 9, static_cast<int64_t>(i)));
      if (s.Size() > 0)
      {
        s.organ = s.organ.to(torch::kLong);
        s.modality = s.modality.to(torch::kLong);
        s.mask = s.mask.to(torch::kLong);
      }
      sets.push_back(std::move(s));
    }
    return Concatenate(sets);
  };
  // A batch of `count` pool rows for `step` (its own random stream), as a future when prefetching.
  struct Batch
  {
    at::Tensor image, mask, organ, modality;
  };
  auto makeBatch = [](const PatchSet & patches, int64_t count, uint64_t seed, const PairedAugmentation * augmentation) {
    at::Generator    generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    const at::Tensor index = torch::randint(patches.Size(), { count }, generator, torch::kLong);
    Batch            batch{ patches.image.index_select(0, index),
                 patches.mask.index_select(0, index),
                 patches.organ.index_select(0, index),
                 patches.modality.index_select(0, index) };
    if (augmentation)
      batch.image = augmentation->Forward(batch.image, seed ^ 0x5DEECE66DULL);
    return batch;
  };
  // A stage's batch source: each call returns this step's batch (of min(batchSize, pool) rows) and
  // starts preparing the next step's, on the loader thread when prefetching.
  auto batches =
    [&](
      const PatchSet & patches, int stage, int64_t batchSize, int64_t steps, const PairedAugmentation * augmentation) {
      const int64_t     count = std::min<int64_t>(batchSize, patches.Size());
      const PatchSet *  pool = &patches; // the stage's pool outlives its batch source
      const std::launch policy = o.prefetch() ? std::launch::async : std::launch::deferred;
      auto              start = [&o, &makeBatch, pool, stage, count, augmentation, policy](int64_t step) {
        return std::async(policy, makeBatch, std::cref(*pool), count, StepSeed(o.seed(), stage, step, 1), augmentation);
      };
      auto pending = std::make_shared<std::future<Batch>>(start(state.step));
      return [&state, start, pending, steps]() {
        Batch batch = pending->get();
        if (state.step + 1 < steps)
          *pending = start(state.step + 1);
        return batch;
      };
    };

  // ---------------------------------------------------------------- stage 1: pre-training
  if (state.stage == 1)
  {
    if (o.mode() != PretrainingMode::None && pretrainingSteps > 0)
    {
      require(!state.pretraining.empty(), "stage 1: no training subjects of the chosen pre-training modalities");
      const PatchSet patches = pool(state.pretraining, pretrainingAttention);
      require(patches.Size() > 0, "stage 1: no query patches (no organ has attention in any training subject)");
      auto &                             encoder = m_Model->Encoder();
      std::shared_ptr<torch::nn::Module> auxiliary;
      ProjectionHead                     head{ nullptr };
      ModalityOrganClassifier            classifier{ nullptr };
      torch::manual_seed(StepSeed(o.seed(), 1, -1)); // the auxiliary module's initial weights
      if (o.mode() == PretrainingMode::CE)
      {
        classifier = ModalityOrganClassifier(
          ModalityOrganClassifierOptions(encoder->HighLevelChannels(), config.modalities.size(), config.organs.size()));
        auxiliary = classifier.ptr();
      }
      else
      {
        head =
          ProjectionHead(ProjectionHeadOptions(encoder->HighLevelChannels()).out_features(o.projection_features()));
        auxiliary = head.ptr();
      }
      auxiliary->to(state.device);
      encoder->SetFrozen(false);
      AdamOptimizer optimizer(Trainable({ encoder.get(), auxiliary.get() }),
                              AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
      resumeInto(optimizer, auxiliary.get());
      ConditionalContrastiveLoss contrastive(
        ConditionalContrastiveLossOptions().temperature(o.temperature()).check_finite(false));
      PairedAugmentation augmentation;
      encoder->train();
      auxiliary->train();
      auto nextBatch = batches(patches, 1, o.pretraining_batch_size(), pretrainingSteps, &augmentation);
      runSteps(
        1,
        pretrainingSteps,
        o.pretraining_learning_rate(),
        optimizer,
        [&]() -> std::pair<double, int64_t> {
          const Batch batch = nextBatch();
          torch::manual_seed(StepSeed(o.seed(), 1, state.step));
          const at::Tensor views = batch.image.to(state.device);
          const at::Tensor representation = encoder->Represent(views);
          const at::Tensor modality = batch.modality.to(state.device), organ = batch.organ.to(state.device);
          at::Tensor       loss;
          if (o.mode() == PretrainingMode::CE)
            loss = classifier->Loss(classifier->forward(representation), modality.repeat({ 2 }), organ.repeat({ 2 }));
          else
            loss =
              contrastive(head->forward(representation),
                          ContrastiveLabels(o.mode(), modality, organ, static_cast<int64_t>(config.organs.size())));
          const double value = loss.item<double>();
          if (std::isfinite(value))
            loss.backward();
          return { value, views.size(0) };
        },
        nullptr,
        [&] { writeCheckpoint(&optimizer, auxiliary.get(), nullptr); });
      encoder->eval();
    }
    finishStage(nullptr);
  }

  // ---------------------------------------------------------------- stage 2: decoder
  if (state.stage == 2)
  {
    auto &     encoder = m_Model->Encoder();
    auto &     decoder = m_Model->Decoder();
    const bool trainEncoder = o.mode() == PretrainingMode::None || o.finetune_encoder();
    encoder->SetFrozen(!trainEncoder);
    std::vector<torch::nn::Module *> trained{ decoder.get() };
    if (trainEncoder)
      trained.push_back(encoder.get());
    AdamOptimizer optimizer(Trainable(trained), AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
    resumeInto(optimizer, nullptr);
    // The best weights so far (encoder and decoder), carried through checkpoints.
    ModelBundle best;
    if (state.haveCheckpoint && state.step > 0 && !state.checkpoint.WithPrefix("best").empty())
      for (const auto & [name, tensor] : state.checkpoint.WithPrefix("best"))
        best.Add(name, tensor);
    const PatchSet patches = pool(state.labelled, o.attention());
    require(patches.Size() > 0, "stage 2: no query patches (no organ has attention in any labelled subject)");
    const PatchSet validation = pool(state.validation, AttentionSource::Coarse);
    DiceLoss       dice;
    const int64_t  P = config.patch_size;
    auto           setTrain = [&] {
      decoder->train();
      encoder->train(); // a frozen encoder keeps BatchNorm in eval mode
    };
    // Dice of the val patches, pooled per organ (sum of overlaps over sums of sizes), mean over
    // the organs that occur; -1 without validation patches.
    auto validate = [&]() {
      if (validation.Size() == 0)
        return -1.0;
      torch::NoGradGuard noGrad;
      decoder->eval();
      encoder->eval();
      const int64_t O = static_cast<int64_t>(config.organs.size());
      at::Tensor    overlap = torch::zeros({ O }, torch::kDouble), size = torch::zeros({ O }, torch::kDouble);
      for (int64_t first = 0; first < validation.Size(); first += 64)
      {
        const int64_t    n = std::min<int64_t>(64, validation.Size() - first);
        const at::Tensor x = validation.image.narrow(0, first, n).to(state.device);
        const auto       features = encoder->forward(x);
        const at::Tensor predicted = decoder->forward(features.low_level, features.high_level, { P, P }, features.stem)
                                       .argmax(1)
                                       .to(torch::kCPU)
                                       .to(torch::kDouble);
        const at::Tensor truth = validation.mask.narrow(0, first, n).to(torch::kDouble);
        const at::Tensor organ = validation.organ.narrow(0, first, n);
        overlap.index_add_(0, organ, (predicted * truth).sum({ 1, 2 }));
        size.index_add_(0, organ, (predicted + truth).sum({ 1, 2 }));
      }
      setTrain();
      const at::Tensor present = size > 0;
      if (!present.any().item<bool>())
        return -1.0;
      return (2.0 * overlap.masked_select(present) / size.masked_select(present)).mean().item<double>();
    };
    auto keepIfBest = [&](double value) {
      if (value > m_BestDice)
      {
        m_BestDice = value;
        best = ModelBundle();
        best.AddModule("encoder", *encoder);
        best.AddModule("decoder", *decoder);
        state.log
          << nlohmann::json{ { "stage", 2 }, { "step", state.step }, { "val_dice", value }, { "best", true } }.dump()
          << '\n'
          << std::flush;
      }
      else
        state.log << nlohmann::json{ { "stage", 2 }, { "step", state.step }, { "val_dice", value } }.dump() << '\n'
                  << std::flush;
    };
    if (state.step == 0)
      m_BestDice = -1.0;
    setTrain();
    // -1: 20 validations over the stage (a validation costs about as much as the patches of
    // ~8 training steps at batch 16 on the study cohort).
    const int64_t validateEvery =
      o.validate_every() > 0 ? o.validate_every() : std::max<int64_t>(1, (decoderSteps + 19) / 20);
    auto nextBatch = batches(patches, 2, o.decoder_batch_size(), decoderSteps, nullptr);
    runSteps(
      2,
      decoderSteps,
      o.decoder_learning_rate(),
      optimizer,
      [&]() -> std::pair<double, int64_t> {
        const Batch batch = nextBatch();
        torch::manual_seed(StepSeed(o.seed(), 2, state.step)); // decoder dropout
        const at::Tensor x = batch.image.to(state.device);
        EncoderFeatures  features;
        if (trainEncoder)
          features = encoder->forward(x);
        else
        {
          torch::NoGradGuard noGrad;
          features = encoder->forward(x);
        }
        const at::Tensor logits = decoder->forward(features.low_level, features.high_level, { P, P }, features.stem);
        const at::Tensor mask = batch.mask.to(state.device);
        at::Tensor       loss = dice(logits, mask);
        if (o.decoder_cross_entropy())
          loss = loss + torch::nn::functional::cross_entropy(logits, mask.to(torch::kLong));
        const double value = loss.item<double>();
        if (std::isfinite(value))
          loss.backward();
        return { value, x.size(0) };
      },
      [&] {
        if (state.step % validateEvery == 0 || state.step == decoderSteps)
        {
          const double value = validate();
          if (value >= 0.0)
            keepIfBest(value);
        }
      },
      [&] { writeCheckpoint(&optimizer, nullptr, best.Tensors().empty() ? nullptr : &best); });
    // The best validation weights (the last ones without validation patches).
    if (!best.Tensors().empty())
    {
      best.LoadInto("encoder", *encoder);
      best.LoadInto("decoder", *decoder);
    }
    encoder->SetFrozen(false);
    encoder->eval();
    decoder->eval();
    finishStage(nullptr);
  }

  // The model bundle, with its provenance.
  m_Model->Coarse()->to(torch::kCPU);
  m_Model->Encoder()->to(torch::kCPU);
  m_Model->Decoder()->to(torch::kCPU);
  ModelBundle    bundle = m_Model->ToBundle();
  nlohmann::json provenance = Fingerprint(o);
  provenance["tool_version"] = Version();
  const std::time_t now = std::time(nullptr);
  char              date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  provenance["date"] = date;
  provenance["training_volumes"] = static_cast<int64_t>(std::count_if(
    state.subjects.begin(), state.subjects.end(), [](const TrainingSubject & s) { return s.split == "train"; }));
  provenance["labelled_subjects"] = m_Labelled;
  provenance["validation_volumes"] = static_cast<int64_t>(state.validation.size());
  provenance["best_validation_dice"] = m_BestDice;
  provenance["coarse_validation_dice"] = m_CoarseDice;
  bundle.config["provenance"] = provenance;
  const std::string modelPath = (directory / "model.agcl").string();
  bundle.Save(modelPath);
  return modelPath;
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
  return base;
}

} // namespace agcl
