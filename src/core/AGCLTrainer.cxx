/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// AGCLTrainer::Run: checks the options, locks the run folder, builds or resumes the model,
// chooses each stage's subjects and step budget, runs the stages (CoarseStage.cxx,
// PretrainingStage.cxx, DecoderStage.cxx, sharing TrainingRun.cxx's step loop and checkpoints)
// and writes the model bundle with its provenance.
#include "agcl/AGCLTrainer.h"

#include "TrainingRun.h"

#include "agcl/AtomicFile.h"
#include "agcl/BuildInfo.h"
#include "agcl/CheckpointState.h"
#include "agcl/Device.h"

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <set>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace agcl {
namespace {

namespace fs = std::filesystem;
using detail::TrainingRun;

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
CheckOptions(const AGCLTrainerOptions & o)
{
  const auto require = &TrainingRun::Require;
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
  require(o.encoder_learning_rate() > 0.0 || o.encoder_learning_rate() == -1.0,
          "encoder_learning_rate must be > 0, or -1 (the decoder's)");
  require(o.decoder_dice() || o.decoder_cross_entropy(),
          "decoder_dice and decoder_cross_entropy are both off: stage 2 would have no loss");
  require(o.warmup_fraction() >= 0.0 && o.warmup_fraction() < 1.0, "warmup_fraction must be in [0, 1)");
  require(o.weight_decay() >= 0.0, "weight_decay must be >= 0");
}

// The checkpoint `saved` (read from `path`), checked against this run: its trainer fields, the
// options that must not change and the model configuration this run would build (from
// init_from, else the options'). Returns where the run stood.
CheckpointState
CheckResumable(const AGCLTrainerOptions & o, const ModelBundle & saved, const std::string & path)
{
  const CheckpointState state = ReadCheckpointState(saved.config, path); // checked
  const nlohmann::json  expected = detail::Fingerprint(o);
  for (const auto & [key, value] : expected.items())
  {
    if (!state.options.contains(key) || state.options.at(key) != value)
      throw std::invalid_argument("AGCLTrainer: cannot resume '" + path + "': option '" + key + "' is " + value.dump() +
                                  " here but " + state.options.value(key, nlohmann::json()).dump() +
                                  " in the checkpoint");
  }
  // A resume never silently takes another configuration.
  const nlohmann::json given =
    (o.init_from().empty() ? o.model() : ModelConfig::FromJson(ModelBundle::Load(o.init_from()).config)).ToJson();
  const nlohmann::json savedConfig = ModelConfig::FromJson(saved.config).ToJson();
  if (const std::string key = FirstDifference(given, savedConfig); !key.empty())
    throw std::invalid_argument("AGCLTrainer: cannot resume '" + path + "': the model configuration differs at '" +
                                key + "': " + ValueAt(given, key) + " here but " + ValueAt(savedConfig, key) +
                                " in the checkpoint");
  return state;
}

// Refuses to resume on training data other than the checkpoint's, naming the first difference.
void
CheckSameData(const nlohmann::json & given, const nlohmann::json & saved, const std::string & path)
{
  if (given == saved)
    return;
  std::string what = "the checkpoint records no subjects (written by an older version)";
  if (saved.is_array())
  {
    size_t row = 0;
    while (row < given.size() && row < saved.size() && given[row] == saved[row])
      ++row;
    what =
      row < given.size() && row < saved.size()
        ? "subject " + std::to_string(row + 1) + " is " + given[row].dump() + " here but " + saved[row].dump() +
            " in the checkpoint"
        : std::to_string(given.size()) + " subjects here but " + std::to_string(saved.size()) + " in the checkpoint";
  }
  throw std::invalid_argument("AGCLTrainer: cannot resume '" + path +
                              "': the training data differ ([name, modality, split, labelled]): " + what);
}

// Each stage's subjects: the labelled training subjects the label fraction picks (stages 0 and
// 2), the training subjects of the pre-training modalities (stage 1), the labelled val subjects.
void
ChooseSubjects(TrainingRun & run)
{
  const AGCLTrainerOptions & o = run.options;
  const ModelConfig &        config = run.model.Config();
  const auto                 require = &TrainingRun::Require;
  std::vector<size_t>        labelledTraining;
  for (size_t i = 0; i < run.subjects.size(); ++i)
  {
    const TrainingSubject & s = run.subjects[i];
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
        run.pretraining.push_back(i);
    }
    else if (s.split == "val" && s.labelled)
      run.validation.push_back(i);
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
      if (std::find(names.begin(), names.end(), run.subjects[i].name) == names.end())
        names.push_back(run.subjects[i].name);
    std::mt19937_64 rng(o.seed());
    std::shuffle(names.begin(), names.end(), rng);
    const auto count =
      std::max<size_t>(1, static_cast<size_t>(std::llround(o.label_fraction() * static_cast<double>(names.size()))));
    names.resize(std::min(count, names.size()));
    for (size_t i : labelledTraining)
      if (std::find(names.begin(), names.end(), run.subjects[i].name) != names.end())
        run.labelled.push_back(i);
  }
  for (size_t i : run.labelled)
    if (std::find(run.labelledNames.begin(), run.labelledNames.end(), run.subjects[i].name) == run.labelledNames.end())
      run.labelledNames.push_back(run.subjects[i].name);
  const bool allLabelled =
    run.labelled.size() == labelledTraining.size() &&
    labelledTraining.size() ==
      static_cast<size_t>(std::count_if(
        run.subjects.begin(), run.subjects.end(), [](const TrainingSubject & s) { return s.split == "train"; }));
  run.pretrainingAttention = allLabelled ? o.attention() : AttentionSource::Coarse;

  // Steps per stage: as given, or (-1) sized to the cohort (AutoSteps): stage 0 over the
  // labelled volumes, stages 1 and 2 over their patch pools.
  const double perVolume = static_cast<double>(config.organs.size()) * static_cast<double>(o.patches_per_organ());
  auto         stepsOf = [](int64_t option, int stage, double inputs, int64_t batch) {
    return option >= 0 ? option : AutoSteps(stage, inputs, batch);
  };
  run.steps = {
    stepsOf(o.coarse_steps(), 0, static_cast<double>(run.labelled.size()), o.coarse_batch_size()),
    stepsOf(
      o.pretraining_steps(), 1, static_cast<double>(run.pretraining.size()) * perVolume, o.pretraining_batch_size()),
    stepsOf(o.decoder_steps(), 2, static_cast<double>(run.labelled.size()) * perVolume, o.decoder_batch_size())
  };
}

// The trained model as a bundle, with its provenance.
ModelBundle
FinalBundle(const TrainingRun & run)
{
  const AGCLTrainerOptions & o = run.options;
  AGCLModel &                model = run.model;
  model.Coarse()->to(torch::kCPU);
  model.Encoder()->to(torch::kCPU);
  model.Decoder()->to(torch::kCPU);
  ModelBundle    bundle = model.ToBundle();
  nlohmann::json provenance = detail::Fingerprint(o);
  provenance["tool_version"] = Version();
  provenance["protocol"] = o.finetune_encoder()
                             ? "fine-tune: the encoder trained with the decoder in stage 2"
                             : "paper: the encoder frozen in stage 2 (BatchNorm statistics re-estimated on stage 1's "
                               "training patches first)";
  const std::time_t now = std::time(nullptr);
  char              date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  provenance["date"] = date;
  provenance["training_volumes"] = static_cast<int64_t>(std::count_if(
    run.subjects.begin(), run.subjects.end(), [](const TrainingSubject & s) { return s.split == "train"; }));
  provenance["labelled_subjects"] = run.labelledNames;
  provenance["validation_volumes"] = static_cast<int64_t>(run.validation.size());
  provenance["best_validation_dice"] = run.bestDice;
  provenance["coarse_validation_dice"] = run.coarseDice;
  bundle.config["provenance"] = provenance;
  return bundle;
}

} // namespace

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

void
AGCLTrainer::SetDistributedGroup(std::shared_ptr<DistributedGroup> group)
{
  m_Group = std::move(group);
}

std::string
AGCLTrainer::Run(TrainingData & data)
{
  const AGCLTrainerOptions &              o = m_Options;
  const std::shared_ptr<DistributedGroup> group =
    m_Group ? m_Group : DistributedGroup::Connect(DistributedEnvironment{}); // one process
  const bool leader = group->Rank() == 0;
  // Distributed: the set-up below may fail on one rank only (a lock, a file, an option); the
  // ranks compare notes before the first collective of the stages, so that all stop together.
  std::exception_ptr         setupError;
  std::optional<RunLock>     lock;
  std::optional<TrainingRun> runStorage;
  CheckpointState            saved;
  bool                       continuing = false;
  const fs::path             directory = o.output_directory();
  try
  {
    CheckOptions(o);
    const c10::Device device = ParseDevice(o.device());
    fs::create_directories(directory);
    if (leader)
    {
      lock.emplace(directory); // before anything in the folder is read or written
      // What killed runs left half-written (their temporary files); no other run can be writing.
      for (const char * name : { "checkpoint.agcl", "model.agcl", "settings.json", "log.jsonl" })
        RemoveStaleTemporaries(directory / name);
    }
    const std::string checkpointPath = CheckpointPath(directory.string());
    m_Labelled.clear();
    m_Unconverged.clear();

    // The model: from the checkpoint (resume), from init_from, or new.
    continuing = o.resume() && fs::exists(checkpointPath);
    ModelBundle checkpoint;
    if (continuing)
    {
      checkpoint = ModelBundle::Load(checkpointPath);
      saved = CheckResumable(o, checkpoint, checkpointPath);
      const int savedRanks = saved.world_size;
      TrainingRun::Require(
        savedRanks == group->Size(),
        "cannot resume '" + checkpointPath + "': it was written by a job of " + std::to_string(savedRanks) +
          " process(es), this job has " + std::to_string(group->Size()) +
          " (each rank's share of the global batch is part of the run): resume with " + std::to_string(savedRanks));
      m_Model = std::make_shared<AGCLModel>(AGCLModel::FromBundle(checkpoint));
    }
    else
    {
      TrainingRun::Require(o.resume() || !fs::exists(checkpointPath),
                           "'" + checkpointPath +
                             "' exists: pass resume to continue it, or choose another output directory");
      torch::manual_seed(o.seed()); // the new networks' initial weights
      m_Model =
        std::make_shared<AGCLModel>(o.init_from().empty() ? AGCLModel(o.model()) : AGCLModel::Load(o.init_from()));
    }
    runStorage.emplace(o, *m_Model, data, directory, m_CheckpointHook, m_Progress);
    TrainingRun & run = *runStorage;
    run.group = group;
    run.device = device;
    if (continuing)
    {
      run.checkpoint = std::move(checkpoint);
      run.haveCheckpoint = true;
      run.stage = saved.stage;
      run.step = saved.step;
      run.bestDice = saved.best_dice;
    }
    else
      run.stage = o.stage() < 0 ? 0 : o.stage();
    if (o.stage() >= 0 && run.stage != o.stage())
    {
      // A single stage on top of a checkpoint that ended elsewhere: start that stage afresh.
      run.stage = o.stage();
      run.step = 0;
      run.haveCheckpoint = false;
    }
    m_Model->Coarse()->to(device);
    m_Model->Encoder()->to(device);
    m_Model->Decoder()->to(device);

    run.subjects = data.Subjects();
    run.dataFingerprint = DataFingerprint(run.subjects, m_Model->Config());
    if (continuing)
      CheckSameData(run.dataFingerprint, saved.subjects, checkpointPath);
    ChooseSubjects(run);
    m_Labelled = run.labelledNames;
    m_Steps = run.steps;

    // Output files (rank 0): the log (a resumed run keeps its lines up to the checkpoint) and the
    // settings.
    if (leader)
    {
      run.OpenLog(continuing);
      nlohmann::json settings = OptionsToJson(o);
      settings["tool_version"] = Version();
      settings["output_directory"] = o.output_directory();
      settings["model"] = m_Model->Config().ToJson();
      settings["labelled_subjects"] = m_Labelled;
      settings["effective_steps"] = m_Steps;
      settings["world_size"] = group->Size();
      WriteTextAtomically(directory / "settings.json", settings.dump(2) + "\n"); // checked, fsync'ed, renamed
    }
  }
  catch (...)
  {
    setupError = std::current_exception();
  }
  if (group->Size() > 1)
  {
    // Every rank's outcome and where it stands (continuing, stage, step), compared with rank 0's.
    const int64_t state[4] = {
      setupError ? 1 : 0, continuing ? 1 : 0, runStorage ? runStorage->stage : -1, runStorage ? runStorage->step : -1
    };
    const at::Tensor all = group->AllGather(torch::tensor(std::vector<int64_t>(state, state + 4)).reshape({ 1, 4 }));
    if (setupError)
      std::rethrow_exception(setupError);
    for (int r = 0; r < group->Size(); ++r)
    {
      if (all[r][0].item<int64_t>() != 0)
        throw std::runtime_error("AGCLTrainer: rank " + std::to_string(r) + " of " + std::to_string(group->Size()) +
                                 " could not set the run up (its message names the cause); rank " +
                                 std::to_string(group->Rank()) + " stops too");
      if (!torch::equal(all[r].narrow(0, 1, 3), all[0].narrow(0, 1, 3)))
        throw std::runtime_error("AGCLTrainer: rank " + std::to_string(r) + " finds another checkpoint state in '" +
                                 directory.string() +
                                 "' than rank 0 (resumes: " + std::to_string(all[r][1].item<int64_t>()) + " vs " +
                                 std::to_string(all[0][1].item<int64_t>()) +
                                 "): every rank must see the same output directory (a shared file system)");
    }
  }
  else if (setupError)
    std::rethrow_exception(setupError);
  TrainingRun & run = *runStorage;

  // The stages, in order from where the run stands; each ends by moving on and writing a
  // checkpoint. What they found is kept here even when one throws.
  const std::array<void (*)(TrainingRun &), 3> stages{ detail::RunCoarseStage,
                                                       detail::RunPretrainingStage,
                                                       detail::RunDecoderStage };
  try
  {
    for (int number = 0; number < 3; ++number)
      if (run.stage == number)
        stages[number](run);
  }
  catch (...)
  {
    m_BestDice = run.bestDice;
    m_CoarseDice = run.coarseDice;
    m_Unconverged = run.unconverged;
    throw;
  }
  m_BestDice = run.bestDice;
  m_CoarseDice = run.coarseDice;
  m_Unconverged = run.unconverged;

  const std::string modelPath = (directory / "model.agcl").string();
  if (leader)
    FinalBundle(run).Save(modelPath);
  group->Barrier(); // the model is written when any rank returns
  return modelPath;
}

} // namespace agcl
