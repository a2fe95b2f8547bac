/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The trainer on a synthetic cohort (no ITK): losses fall, every pre-training mode runs, the
// encoder stays frozen in stage 2, a crash between a checkpoint's write and rename is survived
// and the resumed run ends with the uninterrupted run's weights, the label fraction is honoured.
#include "agcl/AGCLModel.h"
#include "agcl/AGCLTrainer.h"
#include "agcl/CheckpointState.h"
#include "agcl/AdamOptimizer.h"
#include "agcl/ModelBundle.h"
#include "common/TinyModelConfig.h"
#include "common/RemoveAtExit.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace {
namespace fs = std::filesystem;

// The tests' tiny model with the synthetic cohort's two organs; a 2-level coarse network on
// windows of 8 slices (the synthetic volumes have 12).
agcl::ModelConfig
SmallConfig()
{
  agcl::ModelConfig c = agcl::test::TinyModelConfig();
  c.organs = { { "bright", 1 }, { "striped", 2 } };
  c.coarse_levels = 2;
  c.coarse_window_slices = 8;
  return c;
}

// A synthetic cohort's subjects; the subclasses make its images.
class SyntheticCohort : public agcl::TrainingData
{
public:
  explicit SyntheticCohort(std::vector<agcl::TrainingSubject> subjects)
    : m_Subjects(std::move(subjects))
  {}
  std::vector<agcl::TrainingSubject>
  Subjects() const override
  {
    return m_Subjects;
  }

protected:
  std::vector<agcl::TrainingSubject> m_Subjects;
};

// Subjects with two organs: organ 0 a bright disk, organ 1 a striped disk; modality 1 adds a
// brightness offset. Each call is recorded (what the label-fraction test checks).
class SyntheticData : public SyntheticCohort
{
public:
  using SyntheticCohort::SyntheticCohort;
  agcl::CoarseSample
  Coarse(size_t index, const agcl::ModelConfig &) override
  {
    coarseCalls.push_back(index);
    torch::Generator g = at::make_generator<at::CPUGeneratorImpl>(100 + index);
    torch::Tensor    classes = torch::zeros({ 12, 16, 16 }, torch::kLong);
    classes.slice(0, 2, 8).slice(1, 2, 7).slice(2, 3, 9).fill_(1);
    classes.slice(0, 4, 11).slice(1, 9, 14).slice(2, 8, 14).fill_(2);
    torch::Tensor image = 0.2 + 0.05 * torch::randn({ 12, 16, 16 }, g);
    image = image + 0.6 * classes.eq(1) + 0.3 * classes.eq(2);
    return { image.to(torch::kFloat), classes };
  }
  agcl::PatchSet
  Patches(size_t index, agcl::AttentionSource source, agcl::AGCLModel &, const c10::Device &, int64_t n, uint64_t seed)
    override
  {
    patchCalls.emplace_back(index, source);
    torch::Generator    g = at::make_generator<at::CPUGeneratorImpl>(seed);
    const int64_t       P = 32, total = 2 * n;
    const torch::Tensor y = torch::arange(P, torch::kFloat).view({ P, 1 }).expand({ P, P });
    const torch::Tensor x = torch::arange(P, torch::kFloat).view({ 1, P }).expand({ P, P });
    torch::Tensor       image = torch::zeros({ total, 2, P, P }), mask = torch::zeros({ total, P, P }, torch::kLong);
    torch::Tensor       organ = torch::arange(total, torch::kLong) / n;
    for (int64_t k = 0; k < total; ++k)
    {
      const torch::Tensor r = torch::rand({ 3 }, g);
      const double        cy = 10 + 12 * r[0].item<double>(), cx = 10 + 12 * r[1].item<double>();
      const double        radius = 5 + 4 * r[2].item<double>();
      const torch::Tensor disk = ((y - cy).pow(2) + (x - cx).pow(2)).le(radius * radius);
      torch::Tensor       texture =
        organ[k].item<int64_t>() == 0 ? torch::full({ P, P }, 0.9) : 0.5 + 0.4 * torch::sin(x * 1.5);
      image[k][0] = torch::where(disk, texture, torch::full({ P, P }, 0.2)) + 0.1 * m_Subjects[index].modality +
                    0.05 * torch::randn({ P, P }, g);
      image[k][1] = ((y - cy).abs().le(radius + 3) & (x - cx).abs().le(radius + 3)).to(torch::kFloat);
      mask[k] = disk.to(torch::kLong);
    }
    return { image, mask, organ, torch::full({ total }, m_Subjects[index].modality, torch::kLong) };
  }

  std::vector<size_t>                                   coarseCalls;
  std::vector<std::pair<size_t, agcl::AttentionSource>> patchCalls;
};

std::vector<agcl::TrainingSubject>
Cohort(int trainNames, int valNames)
{
  std::vector<agcl::TrainingSubject> s;
  for (int i = 0; i < trainNames + valNames; ++i)
    for (int m = 0; m < 2; ++m)
      s.push_back({ "s" + std::to_string(i), m, i < trainNames ? "train" : "val", true });
  return s;
}

agcl::AGCLTrainerOptions
Options(const fs::path & directory, int64_t steps)
{
  fs::remove_all(directory);
  return agcl::AGCLTrainerOptions()
    .output_directory(directory.string())
    .model(SmallConfig())
    .coarse_steps(steps)
    .pretraining_steps(steps)
    .decoder_steps(steps)
    .pretraining_batch_size(8)
    .decoder_batch_size(8)
    .patches_per_organ(8)
    .checkpoint_every(4)
    .validate_every(4)
    .log_every(2)
    .show_progress(false);
}

std::string
ReadText(const fs::path & path)
{
  std::ifstream      in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The log's records without their timing fields (patches/s, ETA): stage, step, loss,
// learning rate and validation values.
std::vector<nlohmann::json>
LogRecords(const fs::path & path)
{
  std::vector<nlohmann::json> records;
  std::istringstream          in(ReadText(path));
  for (std::string line; std::getline(in, line);)
  {
    auto record = nlohmann::json::parse(line);
    record.erase("patches_per_s");
    record.erase("eta_s");
    records.push_back(record);
  }
  return records;
}

fs::path
Scratch(const std::string & name)
{
  const fs::path dir = fs::temp_directory_path() / ("agcl_trainer_test_" + std::to_string(::getpid()));
  static const agcl::test::RemoveAtExit cleanup(dir);
  return dir / name;
}

bool
SameTensors(const agcl::ModelBundle & a, const agcl::ModelBundle & b, const std::string & prefix, std::string & why)
{
  const auto x = a.WithPrefix(prefix), y = b.WithPrefix(prefix);
  if (x.size() != y.size() || x.empty())
  {
    why = "tensor count differs or is 0";
    return false;
  }
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].first != y[i].first || !torch::equal(x[i].second, y[i].second))
    {
      why = prefix + "." + x[i].first;
      return false;
    }
  return true;
}
} // namespace

TEST(AdamOptimizer, MatchesTorchAdamW)
{
  torch::manual_seed(4);
  const torch::Tensor start = torch::randn({ 5, 3 }, torch::kDouble);
  const torch::Tensor target = torch::randn({ 5, 3 }, torch::kDouble);
  torch::Tensor       ours = start.clone().requires_grad_(true), theirs = start.clone().requires_grad_(true);
  agcl::AdamOptimizer adam({ ours }, agcl::AdamOptions{ 0.9, 0.999, 1e-8, 0.01 });
  torch::optim::AdamW reference({ theirs }, torch::optim::AdamWOptions(0.05).weight_decay(0.01));
  for (int step = 0; step < 7; ++step)
  {
    adam.ZeroGrad();
    reference.zero_grad();
    (ours - target).pow(3).abs().sum().backward();
    (theirs - target).pow(3).abs().sum().backward();
    adam.Step(0.05);
    reference.step();
  }
  EXPECT_EQ(adam.StepCount(), 7);
  EXPECT_LT((ours - theirs).abs().max().item<double>(), 1e-12);
  EXPECT_GT((ours - start).abs().max().item<double>(), 0.1); // it moved
}

TEST(AdamOptimizer, MultiTensorStepEqualsTheLoopBitForBit)
{
  // Float32 parameters of several shapes (one without a gradient, one at a smaller learning
  // rate), weight decay on: the multi-tensor step and the loop over parameters give identical
  // bits after every step, and both move the parameters.
  torch::manual_seed(6);
  const std::vector<std::vector<int64_t>> shapes{ { 8, 3, 3, 3 }, { 8 }, { 5 }, { 16, 8 }, { 1 } };
  std::vector<torch::Tensor>              start, targets, loopParameters, multiParameters;
  for (const auto & shape : shapes)
  {
    start.push_back(torch::randn(shape));
    targets.push_back(torch::randn(shape));
    loopParameters.push_back(start.back().clone().requires_grad_(true));
    multiParameters.push_back(start.back().clone().requires_grad_(true));
  }
  agcl::AdamOptions loopOptions{ 0.9, 0.999, 1e-8, 0.01 };
  loopOptions.kernels = agcl::AdamOptions::Kernels::PerParameter;
  agcl::AdamOptions multiOptions = loopOptions;
  multiOptions.kernels = agcl::AdamOptions::Kernels::MultiTensor;
  agcl::AdamOptimizer       loop(loopParameters, loopOptions), multi(multiParameters, multiOptions);
  const std::vector<double> scales{ 1.0, 1.0, 0.1, 1.0, 1.0 };
  loop.SetLearningRateScales(scales);
  multi.SetLearningRateScales(scales);
  const size_t frozen = 2; // never gets a gradient
  auto         backward = [&](std::vector<torch::Tensor> & parameters) {
    torch::Tensor loss = torch::zeros({});
    for (size_t i = 0; i < parameters.size(); ++i)
      if (i != frozen)
        loss = loss + (parameters[i] - targets[i]).pow(2).sum() + parameters[i].sin().sum();
    loss.backward();
  };
  for (int step = 0; step < 5; ++step)
  {
    loop.ZeroGrad();
    multi.ZeroGrad();
    backward(loopParameters);
    backward(multiParameters);
    loop.Step(0.01);
    multi.Step(0.01);
    for (size_t i = 0; i < shapes.size(); ++i)
      ASSERT_TRUE(torch::equal(loopParameters[i], multiParameters[i])) << "parameter " << i << ", step " << step;
  }
  for (size_t i = 0; i < shapes.size(); ++i)
  {
    const double moved = (multiParameters[i] - start[i]).abs().max().item<double>();
    if (i == frozen)
      EXPECT_EQ(moved, 0.0);
    else
      EXPECT_GT(moved, 1e-3) << "parameter " << i;
  }
  // The saved moments agree too (the checkpoint layout is the same whichever step ran).
  agcl::ModelBundle loopBundle, multiBundle;
  loop.Save(loopBundle, "adam");
  multi.Save(multiBundle, "adam");
  for (size_t i = 0; i < shapes.size(); ++i)
    for (const char * suffix : { ".m", ".v" })
    {
      const std::string name = "adam." + std::to_string(i) + suffix;
      EXPECT_TRUE(torch::equal(loopBundle.Get(name), multiBundle.Get(name))) << name;
    }
}

TEST(AdamOptimizer, LearningRateScalesMatchTorchAdamWParameterGroups)
{
  torch::manual_seed(5);
  const torch::Tensor start1 = torch::randn({ 4 }, torch::kDouble), start2 = torch::randn({ 2, 3 }, torch::kDouble);
  const torch::Tensor target = torch::randn({ 4 }, torch::kDouble);
  torch::Tensor       a1 = start1.clone().requires_grad_(true), a2 = start2.clone().requires_grad_(true);
  torch::Tensor       b1 = start1.clone().requires_grad_(true), b2 = start2.clone().requires_grad_(true);
  agcl::AdamOptimizer adam({ a1, a2 }, agcl::AdamOptions{ 0.9, 0.999, 1e-8, 0.01 });
  adam.SetLearningRateScales({ 1.0, 0.1 });
  // The reference: two parameter groups at 0.05 and 0.005.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
    std::vector<torch::Tensor>{ b1 },
    std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.05).weight_decay(0.01)));
  groups.emplace_back(
    std::vector<torch::Tensor>{ b2 },
    std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.005).weight_decay(0.01)));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(0.05));
  auto                loss = [&](const torch::Tensor & x, const torch::Tensor & y) {
    return (x - target).pow(3).abs().sum() + (y.sum(0) - target.narrow(0, 0, 3)).pow(2).sum();
  };
  for (int step = 0; step < 7; ++step)
  {
    adam.ZeroGrad();
    reference.zero_grad();
    loss(a1, a2).backward();
    loss(b1, b2).backward();
    adam.Step(0.05);
    reference.step();
  }
  EXPECT_LT((a1 - b1).abs().max().item<double>(), 1e-12);
  EXPECT_LT((a2 - b2).abs().max().item<double>(), 1e-12);
  EXPECT_GT((a2 - start2).abs().max().item<double>(), 0.005); // the scaled one moved too
  EXPECT_THROW(adam.SetLearningRateScales({ 1.0 }), std::invalid_argument);
  EXPECT_THROW(adam.SetLearningRateScales({ 1.0, -0.1 }), std::invalid_argument);
}

TEST(AGCLTrainer, LossFallsInEveryStage)
{
  SyntheticData     data(Cohort(3, 1));
  agcl::AGCLTrainer trainer(
    Options(Scratch("loss"), 40).coarse_learning_rate(3e-3).pretraining_steps(120).log_every(5));
  std::map<int, std::vector<double>> losses;
  trainer.SetProgressCallback([&](const agcl::TrainingProgress & p) { losses[p.stage].push_back(p.loss); });
  const std::string model = trainer.Run(data);
  ASSERT_TRUE(fs::exists(model));
  for (int stage = 0; stage < 3; ++stage)
  {
    const auto & l = losses[stage];
    ASSERT_GE(l.size(), 8u) << "stage " << stage;
    const size_t n = l.size();
    const double first = (l[0] + l[1]) / 2, last = (l[n - 2] + l[n - 1]) / 2;
    std::cout << "stage " << stage << ": loss " << first << " -> " << last << std::endl;
    EXPECT_LT(last, 0.9 * first) << "stage " << stage;
  }
  EXPECT_GT(trainer.BestValidationDice(), 0.0);
  // The coarse network's validation Dice, recomputed voxel by voxel for the val rows (6, 7).
  {
    std::map<int64_t, double> overlap, size;
    for (size_t row : { 6, 7 })
    {
      const agcl::CoarseSample s = data.Coarse(row, trainer.Model().Config());
      const torch::Tensor      predicted = trainer.Model().PredictCoarseClasses(s.image, torch::kCPU).to(torch::kLong);
      const auto               p = predicted.accessor<int64_t, 3>();
      const auto               t = s.classes.accessor<int64_t, 3>();
      for (int64_t z = 0; z < predicted.size(0); ++z)
        for (int64_t y = 0; y < predicted.size(1); ++y)
          for (int64_t x = 0; x < predicted.size(2); ++x)
          {
            overlap[t[z][y][x]] += p[z][y][x] == t[z][y][x];
            size[t[z][y][x]] += 1;
            size[p[z][y][x]] += 1;
          }
    }
    double sum = 0;
    int    organs = 0;
    for (int64_t c : { 1, 2 })
      if (size[c] > 0)
      {
        sum += 2 * overlap[c] / size[c];
        ++organs;
      }
    std::cout << "coarse validation Dice " << trainer.CoarseValidationDice() << std::endl;
    EXPECT_NEAR(trainer.CoarseValidationDice(), sum / organs, 1e-9);
    EXPECT_GE(trainer.CoarseValidationDice(), 0.0);
    EXPECT_LE(trainer.CoarseValidationDice(), 1.0);
  }
  // The bundle loads as a model (the filters' path) and carries its provenance.
  const agcl::ModelBundle bundle = agcl::ModelBundle::Load(model);
  EXPECT_NO_THROW(agcl::AGCLModel::FromBundle(bundle));
  EXPECT_EQ(bundle.config.at("provenance").at("mode"), "agcl");
  EXPECT_EQ(bundle.config.at("provenance").at("protocol").get<std::string>().rfind("paper: the encoder frozen", 0), 0u);
  EXPECT_DOUBLE_EQ(bundle.config.at("provenance").at("best_validation_dice").get<double>(),
                   trainer.BestValidationDice());
}

namespace {
// 2D RGB pictures (issue 19): a red disc (class 1) and a blue box (class 2) on a grey-green
// textured background, one per picture; coarse samples [3, 1, 16, 16], patches [n, 3 + 1, 32, 32]
// with the attention as the fourth channel. The colour alone tells the classes apart, so what is
// tested is that the three stages train a 2D model end to end, not how well.
class SyntheticPictures : public SyntheticCohort
{
public:
  using SyntheticCohort::SyntheticCohort;
  static torch::Tensor
  Picture(const torch::Tensor & classes, torch::Generator & g)
  {
    // classes [H, W] -> [3, H, W] in 0..1
    const torch::Tensor red = classes.eq(1).to(torch::kFloat), blue = classes.eq(2).to(torch::kFloat);
    const torch::Tensor ground = 1.0 - red - blue;
    torch::Tensor       rgb = torch::stack(
      { 0.9 * red + 0.4 * ground, 0.1 * red + 0.1 * blue + 0.5 * ground, 0.2 * red + 0.9 * blue + 0.3 * ground });
    return rgb + 0.05 * torch::randn(rgb.sizes(), g);
  }
  agcl::CoarseSample
  Coarse(size_t index, const agcl::ModelConfig & config) override
  {
    EXPECT_EQ(config.image_dimensions, 2);
    torch::Generator g = at::make_generator<at::CPUGeneratorImpl>(200 + index);
    torch::Tensor    classes = torch::zeros({ 1, 16, 16 }, torch::kLong);
    classes.slice(1, 2, 7).slice(2, 3, 9).fill_(1);
    classes.slice(1, 9, 14).slice(2, 7 + static_cast<int64_t>(index % 3), 13).fill_(2);
    return { Picture(classes[0], g).unsqueeze(1), classes }; // [3, 1, 16, 16], [1, 16, 16]
  }
  agcl::PatchSet
  Patches(size_t index, agcl::AttentionSource, agcl::AGCLModel &, const c10::Device &, int64_t n, uint64_t seed)
    override
  {
    torch::Generator    g = at::make_generator<at::CPUGeneratorImpl>(seed);
    const int64_t       P = 32, total = 2 * n;
    const torch::Tensor y = torch::arange(P, torch::kFloat).view({ P, 1 }).expand({ P, P });
    const torch::Tensor x = torch::arange(P, torch::kFloat).view({ 1, P }).expand({ P, P });
    torch::Tensor       image = torch::zeros({ total, 4, P, P }), mask = torch::zeros({ total, P, P }, torch::kLong);
    const torch::Tensor organ = torch::arange(total, torch::kLong) / n;
    for (int64_t k = 0; k < total; ++k)
    {
      const torch::Tensor r = torch::rand({ 3 }, g);
      const double        cy = 10 + 12 * r[0].item<double>(), cx = 10 + 12 * r[1].item<double>();
      const double        radius = 5 + 4 * r[2].item<double>();
      const torch::Tensor shape = organ[k].item<int64_t>() == 0
                                    ? ((y - cy).pow(2) + (x - cx).pow(2)).le(radius * radius)
                                    : ((y - cy).abs().le(radius) & (x - cx).abs().le(radius));
      image[k].slice(0, 0, 3).copy_(Picture(shape.to(torch::kLong) * (organ[k].item<int64_t>() + 1), g));
      image[k][3] = ((y - cy).abs().le(radius + 3) & (x - cx).abs().le(radius + 3)).to(torch::kFloat);
      mask[k] = shape.to(torch::kLong);
    }
    return { image, mask, organ, torch::full({ total }, m_Subjects[index].modality, torch::kLong) };
  }
};
} // namespace

TEST(AGCLTrainer, TwoDimensionalColourModelTrainsThroughTheThreeStages)
{
  // One source ("voc": Eq. 3 then conditions on the class alone), 2D pictures with 3 channels.
  std::vector<agcl::TrainingSubject> subjects;
  for (int i = 0; i < 6; ++i)
    subjects.push_back({ "p" + std::to_string(i), 0, i < 5 ? "train" : "val", true });
  SyntheticPictures data(subjects);
  agcl::ModelConfig config = SmallConfig();
  config.modalities = { "voc" };
  config.image_dimensions = 2;
  config.image_channels = 3;
  const agcl::AGCLTrainerOptions options =
    Options(Scratch("pictures"), 24).model(config).coarse_learning_rate(3e-3).log_every(4);
  agcl::AGCLTrainer                  trainer(options);
  std::map<int, std::vector<double>> losses;
  trainer.SetProgressCallback([&](const agcl::TrainingProgress & p) { losses[p.stage].push_back(p.loss); });
  const std::string model = trainer.Run(data);
  ASSERT_TRUE(fs::exists(model));
  for (int stage = 0; stage < 3; ++stage)
  {
    const auto & l = losses[stage];
    ASSERT_GE(l.size(), 4u) << "stage " << stage;
    std::cout << "2D stage " << stage << ": loss " << l.front() << " -> " << l.back() << std::endl;
    EXPECT_TRUE(std::isfinite(l.back())) << "stage " << stage;
  }
  // Stage 0 learns the colours: its loss falls.
  EXPECT_LT(losses[0].back(), 0.9 * losses[0].front());
  agcl::AGCLModel loaded = agcl::AGCLModel::Load(model);
  EXPECT_EQ(loaded.Config().image_dimensions, 2);
  EXPECT_TRUE(loaded.Coarse()->options().planar());
  EXPECT_EQ(loaded.Encoder()->named_parameters()["conv1.weight"].size(1), 4);
  // The coarse network on a validation picture: [3, 1, 16, 16] -> classes [1, 16, 16], no
  // padding of the single slice; a one-channel volume is refused for this model.
  const agcl::CoarseSample s = data.Coarse(5, config);
  agcl::AGCLModel          copy = agcl::AGCLModel::Load(model);
  const torch::Tensor      classes = copy.PredictCoarseClasses(s.image, torch::kCPU);
  EXPECT_EQ(classes.sizes().vec(), (std::vector<int64_t>{ 1, 16, 16 }));
  // Mean Dice of the two classes on the validation picture, counted here: the trained coarse
  // network against the same network before training (the trainer's seed, the same weights).
  auto dice = [&](agcl::AGCLModel & m) {
    const torch::Tensor p = m.PredictCoarseClasses(s.image, torch::kCPU).to(torch::kLong);
    double              sum = 0;
    for (int64_t c : { 1, 2 })
    {
      const double both = (p.eq(c) & s.classes.eq(c)).sum().item<double>();
      sum += 2 * both / (p.eq(c).sum().item<double>() + s.classes.eq(c).sum().item<double>());
    }
    return sum / 2;
  };
  torch::manual_seed(options.seed());
  agcl::AGCLModel untrained(config);
  std::cout << "2D coarse Dice on the validation picture: " << dice(copy) << " (before training " << dice(untrained)
            << "; the trainer's validation Dice " << trainer.CoarseValidationDice() << ")" << std::endl;
  EXPECT_NEAR(trainer.CoarseValidationDice(), dice(copy), 1e-9);
  EXPECT_GT(dice(copy), dice(untrained) + 0.1);
  EXPECT_THROW(copy.PredictCoarseClasses(torch::rand({ 1, 16, 16 }), torch::kCPU), std::invalid_argument);
}

namespace {
// The encoder's weights (parameters) and its BatchNorm statistics, compared apart.
bool
IsBatchNormStatistic(const std::string & name)
{
  return name.find("running_mean") != std::string::npos || name.find("running_var") != std::string::npos ||
         name.find("num_batches_tracked") != std::string::npos;
}
bool
SameEncoderPart(const agcl::ModelBundle & a, const agcl::ModelBundle & b, bool statistics, std::string & why)
{
  const auto x = a.WithPrefix("encoder"), y = b.WithPrefix("encoder");
  size_t     compared = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
  {
    if (x[i].first != y[i].first)
    {
      why = "names differ: " + x[i].first + " / " + y[i].first;
      return false;
    }
    if (IsBatchNormStatistic(x[i].first) != statistics)
      continue;
    ++compared;
    if (!torch::equal(x[i].second, y[i].second))
    {
      why = "encoder." + x[i].first;
      return false;
    }
  }
  if (x.size() != y.size() || compared == 0)
  {
    why = "tensor count differs or nothing compared";
    return false;
  }
  return true;
}
} // namespace

TEST(AGCLTrainer, EveryPretrainingModeRunsAndStage2FreezesTheEncoderUnlessFineTuned)
{
  SyntheticData data(Cohort(2, 1));
  // A base whose encoder was trained in stage 2 (fine-tuned), so its BatchNorm statistics are
  // running averages of training batches: a frozen stage 2 from it re-estimates them. (From a
  // frozen base they would come out equal: the same weights on the same seeded patches.)
  agcl::AGCLTrainer base(Options(Scratch("base"), 4).finetune_encoder(true));
  const std::string baseModel = base.Run(data);
  const auto        before = agcl::ModelBundle::Load(baseModel);
  for (const char * mode : { "agcl", "supcon", "sscl", "ce", "random" })
  {
    auto options = Options(Scratch(std::string("mode_") + mode), 4).init_from(baseModel);
    options.mode(agcl::ParsePretrainingMode(mode));
    agcl::AGCLTrainer trainer(options);
    const auto        after = agcl::ModelBundle::Load(trainer.Run(data));
    std::string       why;
    // Stage 1 changes the encoder's weights, except for random (no stage 1, frozen in stage 2:
    // the weights bit for bit, only the BatchNorm statistics re-estimated).
    EXPECT_EQ(SameEncoderPart(before, after, false, why), std::string(mode) == "random") << mode << " " << why;
    EXPECT_FALSE(SameEncoderPart(before, after, true, why)) << mode;
    EXPECT_FALSE(SameTensors(before, after, "decoder", why)) << mode;
  }
  // Stage 2 alone (the paper's protocol): the encoder's weights stay bit for bit, its BatchNorm
  // statistics are re-estimated; the coarse network is untouched ...
  {
    agcl::AGCLTrainer trainer(Options(Scratch("stage2"), 4).init_from(baseModel).stage(2));
    const auto        after = agcl::ModelBundle::Load(trainer.Run(data));
    std::string       why;
    EXPECT_TRUE(SameEncoderPart(before, after, false, why)) << why;
    EXPECT_FALSE(SameEncoderPart(before, after, true, why));
    EXPECT_FALSE(SameTensors(before, after, "decoder", why));
    EXPECT_TRUE(SameTensors(before, after, "coarse", why)) << why;
    bool logged = false;
    for (const auto & record : LogRecords(Scratch("stage2") / "log.jsonl"))
      logged = logged || record.contains("batchnorm_statistics_patches");
    EXPECT_TRUE(logged);
  }
  // ... but fine-tuned, the encoder is trained with the decoder, whatever the mode.
  for (const auto mode : { agcl::PretrainingMode::AGCL, agcl::PretrainingMode::Random })
  {
    auto options = Options(Scratch("stage2_trained"), 4).init_from(baseModel).stage(2);
    options.mode(mode).finetune_encoder(true);
    agcl::AGCLTrainer trainer(options);
    const auto        after = agcl::ModelBundle::Load(trainer.Run(data));
    std::string       why;
    EXPECT_FALSE(SameEncoderPart(before, after, false, why)) << agcl::ToString(mode);
  }
  // The fine-tuned encoder's own learning rate: at 1e-12 its weights barely move, while the
  // decoder (at its 1e-3) trains as before.
  {
    auto options = Options(Scratch("stage2_encoder_lr"), 4).init_from(baseModel).stage(2);
    options.finetune_encoder(true).encoder_learning_rate(1e-12);
    const auto after = agcl::ModelBundle::Load(agcl::AGCLTrainer(options).Run(data));
    const auto x = before.WithPrefix("encoder"), y = after.WithPrefix("encoder");
    double     largest = 0.0;
    for (size_t i = 0; i < x.size(); ++i)
      if (!IsBatchNormStatistic(x[i].first))
        largest = std::max(largest, (x[i].second - y[i].second).abs().max().item<double>());
    EXPECT_LT(largest, 1e-8);
    std::string why;
    EXPECT_FALSE(SameTensors(before, after, "decoder", why));
  }
}

TEST(AGCLTrainer, NoneAndSupervisedAreRandomFineTuned)
{
  for (const char * alias : { "none", "Supervised" })
  {
    EXPECT_EQ(agcl::ParsePretrainingMode(alias), agcl::PretrainingMode::Random);
    EXPECT_TRUE(agcl::IsEndToEndAlias(alias));
    const auto options = agcl::OptionsFromJson({ { "mode", alias } });
    EXPECT_EQ(options.mode(), agcl::PretrainingMode::Random);
    EXPECT_TRUE(options.finetune_encoder()) << alias;
    EXPECT_EQ(agcl::OptionsToJson(options).at("mode"), "random");
    EXPECT_THROW(agcl::OptionsFromJson({ { "mode", alias }, { "finetune_encoder", false } }), std::invalid_argument);
  }
  EXPECT_FALSE(agcl::IsEndToEndAlias("random"));
  EXPECT_FALSE(agcl::OptionsFromJson({ { "mode", "random" } }).finetune_encoder());
  // agcl train's --mode goes through SetPretrainingMode, as the JSON does.
  for (const char * name : { "none", "SUPERVISED", "random", "agcl" })
  {
    agcl::AGCLTrainerOptions options;
    agcl::SetPretrainingMode(options, name);
    EXPECT_EQ(options.mode(), agcl::ParsePretrainingMode(name)) << name;
    EXPECT_EQ(options.finetune_encoder(), std::string(name) == "none" || std::string(name) == "SUPERVISED") << name;
  }
  {
    agcl::AGCLTrainerOptions options;
    EXPECT_THROW(agcl::SetPretrainingMode(options, "simclr"), std::invalid_argument);
  }
  // The alias gives the same run as its spelled-out form, tensor for tensor.
  SyntheticData data(Cohort(2, 1));
  auto          alias = agcl::OptionsFromJson({ { "mode", "none" } }, Options(Scratch("alias_none"), 3));
  auto        spelled = Options(Scratch("alias_random"), 3).mode(agcl::PretrainingMode::Random).finetune_encoder(true);
  const auto  a = agcl::ModelBundle::Load(agcl::AGCLTrainer(alias).Run(data));
  const auto  b = agcl::ModelBundle::Load(agcl::AGCLTrainer(spelled).Run(data));
  std::string why;
  for (const char * part : { "coarse", "encoder", "decoder" })
    EXPECT_TRUE(SameTensors(a, b, part, why)) << why;
}

TEST(AGCLTrainer, DecoderCrossEntropyAddsThePixelCrossEntropyToTheDiceLoss)
{
  SyntheticData     data(Cohort(2, 1));
  agcl::AGCLTrainer base(Options(Scratch("ce_base"), 4));
  const std::string baseModel = base.Run(data);
  // Stage 2 alone from the same weights and seed: the first step sees the same batch and the
  // same logits, so the two runs' first losses differ by the cross-entropy alone.
  auto firstLoss = [&](bool crossEntropy, bool withDice = true) {
    const std::string folder = std::string(crossEntropy ? "ce_on" : "ce_off") + (withDice ? "" : "_alone");
    auto              options = Options(Scratch(folder), 2).init_from(baseModel).stage(2).log_every(1);
    options.decoder_cross_entropy(crossEntropy).decoder_dice(withDice);
    agcl::AGCLTrainer(options).Run(data);
    for (const auto & record : LogRecords(Scratch(folder) / "log.jsonl"))
      if (record.contains("loss") && record.at("step") == 1)
        return record.at("loss").get<double>();
    ADD_FAILURE() << "no step-1 loss in the log";
    return 0.0;
  };
  const double dice = firstLoss(false), withCrossEntropy = firstLoss(true);
  EXPECT_GE(dice, 0.0); // a Dice loss lies in [0, 1]
  EXPECT_LE(dice, 1.0);
  // A two-class pixel cross-entropy of a barely trained decoder: well above 0 (ln 2 = 0.69 for
  // an undecided one), far below the tens a broken sum would give.
  EXPECT_GT(withCrossEntropy - dice, 0.05);
  EXPECT_LT(withCrossEntropy - dice, 3.0);
  // --decoder-dice false: the cross-entropy alone (the paper's Table III loss).
  EXPECT_NEAR(firstLoss(true, false), withCrossEntropy - dice, 1e-5);
}

TEST(AGCLTrainer, ValidateEveryMinusOneValidatesStage2TwentyTimes)
{
  SyntheticData     data(Cohort(2, 1));
  agcl::AGCLTrainer base(Options(Scratch("val_base"), 4));
  const std::string baseModel = base.Run(data);
  auto              options = Options(Scratch("val_auto"), 40).init_from(baseModel).stage(2).validate_every(-1);
  agcl::AGCLTrainer(options).Run(data);
  std::vector<int64_t> steps;
  for (const auto & record : LogRecords(Scratch("val_auto") / "log.jsonl"))
    if (record.contains("val_dice"))
      steps.push_back(record.at("step").get<int64_t>());
  // 40 steps: every ceil(40 / 20) = 2 steps, 20 validations, the last at step 40.
  std::vector<int64_t> expected;
  for (int64_t step = 2; step <= 40; step += 2)
    expected.push_back(step);
  ASSERT_EQ(expected.size(), 20u);
  EXPECT_EQ(steps, expected);
}

TEST(AGCLTrainer, ASecondRunInTheSameFolderIsRefusedNamingTheFirst)
{
  SyntheticData  data(Cohort(2, 1));
  const fs::path directory = Scratch("locked");
  auto           options = Options(directory, 2);
  fs::create_directories(directory);
  // Another run holds the folder: its lock, with its pid in the file (here: this process,
  // through a second open file description, which flock treats as another holder).
  const int fd = ::open((directory / "run.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string pid = std::to_string(::getpid()) + "\n";
  ASSERT_EQ(::write(fd, pid.data(), pid.size()), static_cast<ssize_t>(pid.size()));
  try
  {
    agcl::AGCLTrainer(options).Run(data);
    ADD_FAILURE() << "ran while another run held the folder";
  }
  catch (const std::invalid_argument & e)
  {
    EXPECT_NE(std::string(e.what()).find("another run (process " + std::to_string(::getpid()) + ") is using"),
              std::string::npos)
      << e.what();
  }
  EXPECT_FALSE(fs::exists(directory / "log.jsonl")); // nothing written
  ::close(fd);                                       // the other run ends: its lock goes with it
  EXPECT_NO_THROW(agcl::AGCLTrainer(options).Run(data));
}

TEST(AGCLTrainer, CrashBetweenCheckpointWriteAndRenameThenResumeGivesTheUninterruptedWeights)
{
  SyntheticData     data(Cohort(2, 1));
  agcl::AGCLTrainer uninterrupted(Options(Scratch("whole"), 10));
  const auto        reference = agcl::ModelBundle::Load(uninterrupted.Run(data));

  // Checkpoints come at steps 4 and 8 of each stage and at each stage's end: the 5th is
  // stage 1, step 4 (0:4, 0:8, 0:end, 1:4, >1:8<). Crash while writing it.
  const fs::path    directory = Scratch("crash");
  agcl::AGCLTrainer crashing(Options(directory, 10));
  int               calls = 0;
  fs::path          leftOver;
  crashing.SetCheckpointHook([&](agcl::WritePoint point, const fs::path & temporary) {
    if (point == agcl::WritePoint::BeforeRename && ++calls == 5)
    {
      leftOver = temporary;
      throw std::runtime_error("simulated crash");
    }
  });
  EXPECT_THROW(crashing.Run(data), std::runtime_error);
  const std::string checkpoint = agcl::AGCLTrainer::CheckpointPath(directory.string());
  EXPECT_EQ(leftOver.parent_path(), directory);
  EXPECT_TRUE(fs::exists(leftOver));                         // what the crash left
  const auto previous = agcl::ModelBundle::Load(checkpoint); // intact: the 4th checkpoint
  EXPECT_EQ(previous.config.at("trainer").at("stage"), 1);
  EXPECT_EQ(previous.config.at("trainer").at("step"), 4);

  const std::string crashLog = ReadText(directory / "log.jsonl");
  EXPECT_NE(crashLog.find("\"stage\":1,\"step\":8"), std::string::npos); // logged after the 4th checkpoint
  agcl::AGCLTrainer resumed(Options(directory, 10).resume(true));
  // Options() cleared the folder: write the crash's files back first.
  fs::create_directories(directory);
  previous.Save(checkpoint);
  std::ofstream(directory / "log.jsonl") << crashLog;
  std::ofstream(leftOver) << "half a checkpoint";
  const auto result = agcl::ModelBundle::Load(resumed.Run(data));
  EXPECT_FALSE(fs::exists(leftOver)); // the killed run's temporary file, removed under the lock
  std::string why;
  for (const char * prefix : { "coarse", "encoder", "decoder" })
    EXPECT_TRUE(SameTensors(reference, result, prefix, why)) << why;
  EXPECT_EQ(resumed.BestValidationDice(), uninterrupted.BestValidationDice());
  // The log reads as the uninterrupted run's: each step once, the same losses and validations.
  EXPECT_EQ(LogRecords(directory / "log.jsonl"), LogRecords(Scratch("whole") / "log.jsonl"));
  EXPECT_GT(LogRecords(directory / "log.jsonl").size(), 15u);

  // A checkpoint refuses to continue under other options, and is not overwritten silently.
  auto other = Options(directory, 10).resume(true).seed(2);
  fs::create_directories(directory);
  previous.Save(checkpoint);
  try
  {
    agcl::AGCLTrainer(other).Run(data);
    ADD_FAILURE() << "resumed with another seed";
  }
  catch (const std::invalid_argument & e)
  {
    EXPECT_NE(std::string(e.what()).find("'seed'"), std::string::npos) << e.what();
  }
  // ... nor with another model configuration, nor on other data; each named.
  auto expectRefused = [&](const agcl::AGCLTrainerOptions & options, SyntheticData & cohort, const std::string & text) {
    fs::create_directories(directory);
    previous.Save(checkpoint);
    try
    {
      agcl::AGCLTrainer(options).Run(cohort);
      ADD_FAILURE() << "resumed; expected an error mentioning " << text;
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  agcl::ModelConfig otherConfig = SmallConfig();
  otherConfig.margin_mm = 3.5;
  expectRefused(Options(directory, 10).resume(true).model(otherConfig),
                data,
                "the model configuration differs at 'margin_mm': 3.5 here but " +
                  nlohmann::json(SmallConfig().margin_mm).dump() + " in the checkpoint");
  SyntheticData moreSubjects(Cohort(3, 1));
  expectRefused(Options(directory, 10).resume(true), moreSubjects, "the training data differ");
  // A damaged checkpoint: stage 7 would have skipped every stage and written an untrained model.
  {
    agcl::ModelBundle forged = previous;
    forged.config["trainer"]["stage"] = 7;
    const auto options = Options(directory, 10).resume(true); // (clears the folder)
    fs::create_directories(directory);
    forged.Save(checkpoint);
    try
    {
      agcl::AGCLTrainer(options).Run(data);
      ADD_FAILURE() << "resumed a checkpoint at stage 7";
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find("'trainer.stage' = 7: expected 0..3"), std::string::npos) << e.what();
    }
  }
  auto again = Options(Scratch("unused"), 10).output_directory(directory.string()); // no resume
  try
  {
    agcl::AGCLTrainer(again).Run(data);
    ADD_FAILURE() << "overwrote an existing checkpoint";
  }
  catch (const std::invalid_argument & e)
  {
    EXPECT_NE(std::string(e.what()).find("resume"), std::string::npos) << e.what();
  }
  // A fresh run (no checkpoint, e.g. after a crash before the first one) starts a new log.
  fs::remove(checkpoint);
  agcl::AGCLTrainer(again).Run(data);
  EXPECT_EQ(LogRecords(directory / "log.jsonl"), LogRecords(Scratch("whole") / "log.jsonl"));
}

TEST(AGCLTrainer, LabelFractionPicksWholeSubjectsAndStage1SeesEveryTrainingSubject)
{
  SyntheticData     data(Cohort(5, 1)); // rows 0..9 train (5 names x 2 phases), 10, 11 val
  agcl::AGCLTrainer trainer(
    Options(Scratch("fraction"), 2).label_fraction(0.4).attention(agcl::AttentionSource::Truth));
  trainer.Run(data);
  ASSERT_EQ(trainer.LabelledSubjects().size(), 2u); // round(0.4 * 5)
  std::set<size_t> labelledRows;
  for (size_t i = 0; i < 10; ++i)
    if (std::count(trainer.LabelledSubjects().begin(), trainer.LabelledSubjects().end(), "s" + std::to_string(i / 2)))
      labelledRows.insert(i);
  ASSERT_EQ(labelledRows.size(), 4u);
  // Stage 0: exactly the labelled rows, then the val rows (the coarse network's validation).
  std::set<size_t> expectedCoarse = labelledRows;
  expectedCoarse.insert({ 10, 11 });
  EXPECT_EQ(std::set<size_t>(data.coarseCalls.begin(), data.coarseCalls.end()), expectedCoarse);
  // Stage 1: every training row with the coarse network's attention (never the truth, since
  // labels are withheld); stage 2: the frozen encoder's BatchNorm statistics from stage 1's pool,
  // kept, not drawn again; then the labelled rows (truth, as asked) and the val rows (coarse).
  std::set<size_t> stage1, stage2, validation;
  ASSERT_EQ(data.patchCalls.size(), 10u + 4u + 2u);
  for (size_t k = 0; k < 10; ++k)
  {
    EXPECT_EQ(data.patchCalls[k].second, agcl::AttentionSource::Coarse);
    stage1.insert(data.patchCalls[k].first);
  }
  for (size_t k = 10; k < 14; ++k)
  {
    EXPECT_EQ(data.patchCalls[k].second, agcl::AttentionSource::Truth);
    stage2.insert(data.patchCalls[k].first);
  }
  for (size_t k = 14; k < 16; ++k)
  {
    EXPECT_EQ(data.patchCalls[k].second, agcl::AttentionSource::Coarse);
    validation.insert(data.patchCalls[k].first);
  }
  EXPECT_EQ(stage1.size(), 10u);
  EXPECT_EQ(stage2, labelledRows);
  EXPECT_EQ(validation, (std::set<size_t>{ 10, 11 }));
}

TEST(AGCLTrainer, RefusesBadOptions)
{
  SyntheticData data(Cohort(2, 0));
  for (auto options : { Options(Scratch("bad"), 2).label_fraction(0.0),
                        Options(Scratch("bad"), 2).stage(3),
                        Options(Scratch("bad"), 2).decoder_batch_size(0),
                        Options(Scratch("bad"), 2).validate_every(0),
                        Options(Scratch("bad"), 2).validate_every(-2),
                        Options(Scratch("bad"), 2).temperature(0),
                        Options(Scratch("bad"), 2).decoder_dice(false) })
    EXPECT_THROW(agcl::AGCLTrainer(options).Run(data), std::invalid_argument);
  SyntheticData unlabelled({ { "u", 0, "train", false } });
  EXPECT_THROW(agcl::AGCLTrainer(Options(Scratch("bad"), 2)).Run(unlabelled), std::invalid_argument);
}

TEST(AGCLTrainerOptions, JsonRoundTripAndNamedErrors)
{
  agcl::AGCLTrainerOptions o;
  o.stage(2)
    .mode(agcl::PretrainingMode::SupCon)
    .temperature(0.25)
    .attention(agcl::AttentionSource::Truth)
    .label_fraction(0.4)
    .finetune_encoder(true)
    .pretraining_modalities({ "contrast" })
    .seed(uint64_t(1) << 40)
    .decoder_steps(7)
    .prefetch(false);
  const nlohmann::json json = agcl::OptionsToJson(o);
  // Independent of the table: the values as set, by name.
  EXPECT_EQ(json.at("stage"), 2);
  EXPECT_EQ(json.at("mode"), "supcon");
  EXPECT_EQ(json.at("temperature"), 0.25);
  EXPECT_EQ(json.at("attention"), "truth");
  EXPECT_EQ(json.at("pretraining_modalities"), nlohmann::json::array({ "contrast" }));
  EXPECT_EQ(json.at("seed").get<uint64_t>(), uint64_t(1) << 40);
  EXPECT_EQ(json.at("prefetch"), false);
  EXPECT_EQ(json.at("coarse_steps"), -1); // a default: auto
  EXPECT_FALSE(json.contains("output_directory"));
  EXPECT_FALSE(json.contains("model"));
  EXPECT_EQ(json.size(), 33u);                        // every AGCLTrainerOptions field but output_directory and model
  EXPECT_EQ(json.at("coarse_class_weights"), true);   // a default
  EXPECT_EQ(json.at("decoder_cross_entropy"), false); // a default: Dice loss alone

  const agcl::AGCLTrainerOptions back = agcl::OptionsFromJson(json);
  EXPECT_EQ(agcl::OptionsToJson(back), json);
  EXPECT_EQ(back.mode(), agcl::PretrainingMode::SupCon);
  EXPECT_EQ(back.attention(), agcl::AttentionSource::Truth);
  EXPECT_EQ(back.seed(), uint64_t(1) << 40);
  EXPECT_EQ(back.decoder_steps(), 7);
  // Only the named options change; the base keeps the others.
  const auto partial = agcl::OptionsFromJson({ { "decoder_steps", 3 } }, o);
  EXPECT_EQ(partial.decoder_steps(), 3);
  EXPECT_EQ(partial.temperature(), 0.25);

  auto message = [](const nlohmann::json & bad) {
    try
    {
      agcl::OptionsFromJson(bad);
    }
    catch (const std::invalid_argument & e)
    {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({ { "steps", 3 } }).find("unknown option 'steps'"), std::string::npos);
  EXPECT_NE(message({ { "decoder_steps", 2.5 } }).find("'decoder_steps' = 2.5"), std::string::npos);
  EXPECT_NE(message({ { "seed", -1 } }).find("'seed' = -1"), std::string::npos);
  EXPECT_NE(message({ { "prefetch", 1 } }).find("'prefetch'"), std::string::npos);
  EXPECT_NE(message({ { "mode", "simclr" } }).find("simclr"), std::string::npos);
  EXPECT_NE(message({ { "attention", "labels" } }).find("expected coarse or truth"), std::string::npos);
  EXPECT_NE(message(nlohmann::json::array()).find("expected a JSON object"), std::string::npos);
}

TEST(AGCLTrainer, CoarseClassWeightsAreInverseSquareRootSharesWithMeanOnePerVoxel)
{
  // Counts 900, 90, 9, 0, 1: shares 0.9, 0.09, 0.009, 0, 0.001 -> share^-1/2, scaled.
  const std::vector<double> counts{ 900, 90, 9, 0, 1 };
  std::vector<double>       expected(counts.size());
  double                    total = 0, mean = 0;
  for (double c : counts)
    total += c;
  for (size_t i = 0; i < counts.size(); ++i)
    expected[i] = counts[i] > 0 ? 1.0 / std::sqrt(counts[i] / total) : 0.0;
  for (size_t i = 0; i < counts.size(); ++i)
    mean += expected[i] * counts[i] / total;
  const at::Tensor got = agcl::CoarseClassWeights(torch::tensor(std::vector<int64_t>{ 900, 90, 9, 0, 1 }));
  ASSERT_EQ(got.numel(), 5);
  for (size_t i = 0; i < counts.size(); ++i)
    EXPECT_NEAR(got[i].item<double>(), expected[i] / mean, 1e-12) << i;
  EXPECT_NEAR(got[4].item<double>() / got[0].item<double>(), 30.0, 1e-9); // sqrt(900 / 1)
  EXPECT_THROW(agcl::CoarseClassWeights(torch::zeros({ 3 })), std::invalid_argument);
  EXPECT_THROW(agcl::CoarseClassWeights(torch::tensor({ 1.0, -1.0 })), std::invalid_argument);
}

TEST(AGCLTrainer, AutoStepsArePassesOverTheInputsClampedToTheirRange)
{
  // Stage 0: 40 passes over the labelled volumes, batch 2, in [400, 1500].
  EXPECT_EQ(agcl::AutoSteps(0, 10, 2), 400); // 200 -> the minimum
  EXPECT_EQ(agcl::AutoSteps(0, 48, 2), 960); // the study cohort's 48 labelled volumes
  EXPECT_EQ(agcl::AutoSteps(0, 49, 2), 980);
  EXPECT_EQ(agcl::AutoSteps(0, 500, 2), 1500); // the cap
  // Stages 1 and 2: 8 passes over the pool, in [200, 6000].
  EXPECT_EQ(agcl::AutoSteps(1, 48 * 12 * 24, 32), 3456);     // the study cohort's pool, batch 32
  EXPECT_EQ(agcl::AutoSteps(2, 48 * 12 * 24, 16), 6000);     // 6912 -> the cap
  EXPECT_EQ(agcl::AutoSteps(2, 2 * 12 * 10, 16), 200);       // 120 -> the minimum
  EXPECT_EQ(agcl::AutoSteps(2, 10 * 12 * 24 + 1, 16), 1441); // ceil(1440.5)
  EXPECT_THROW(agcl::AutoSteps(3, 10, 2), std::invalid_argument);
}

TEST(AGCLTrainer, ConvergenceAsksHowMuchOfTheFallCameInTheSecondHalf)
{
  // Exponential decay to a floor: most of the fall early -> converged. Linear fall to the end:
  // half of it in the second half -> not converged. Tenths of 10 steps: means by hand.
  std::vector<double> early, linear, flat(100, 1.0), few(40, 1.0);
  for (int i = 0; i < 100; ++i)
  {
    early.push_back(0.1 + 2.0 * std::exp(-i / 8.0));
    linear.push_back(2.0 - 0.015 * i);
  }
  auto tenthMean = [](const std::vector<double> & v, int first) {
    double sum = 0;
    for (int i = first; i < first + 10; ++i)
      sum += v[i];
    return sum / 10;
  };
  const agcl::Convergence e = agcl::CheckConvergence(early);
  ASSERT_TRUE(e.checked);
  EXPECT_NEAR(e.first, tenthMean(early, 0), 1e-12);
  EXPECT_NEAR(e.middle, tenthMean(early, 45), 1e-12);
  EXPECT_NEAR(e.last, tenthMean(early, 90), 1e-12);
  EXPECT_TRUE(e.converged);
  const agcl::Convergence l = agcl::CheckConvergence(linear);
  EXPECT_NEAR(l.middle - l.last, 0.015 * 45, 1e-9);
  EXPECT_FALSE(l.converged);
  EXPECT_TRUE(agcl::CheckConvergence(flat).converged); // no fall
  EXPECT_FALSE(agcl::CheckConvergence(few).checked);   // fewer than 50 steps: not judged
  // A cosine-like flat end does not hide a large fall in the second half.
  std::vector<double> flatEnd(100);
  for (int i = 0; i < 100; ++i)
    flatEnd[i] = i < 50 ? 3.0 - 0.02 * i : std::max(1.0, 2.0 - 0.025 * (i - 50));
  EXPECT_FALSE(agcl::CheckConvergence(flatEnd).converged);
}

TEST(CheckpointState, DamagedOrForeignTrainerFieldsAreRefusedNamingTheField)
{
  const nlohmann::json        good = { { "trainer",
                                         { { "stage", 1 },
                                           { "step", 4 },
                                           { "best_dice", 0.25 },
                                           { "options", { { "seed", 1 } } },
                                           { "subjects", nlohmann::json::array({ "s1" }) } } } };
  const agcl::CheckpointState state = agcl::ReadCheckpointState(good, "c.agcl");
  EXPECT_EQ(state.stage, 1);
  EXPECT_EQ(state.step, 4);
  EXPECT_EQ(state.best_dice, 0.25);
  EXPECT_EQ(state.options, nlohmann::json({ { "seed", 1 } }));
  EXPECT_EQ(state.subjects, nlohmann::json::array({ "s1" }));
  EXPECT_EQ(state.world_size, 1); // absent: one process (checkpoints before distributed training)
  {
    nlohmann::json two = good;
    two["trainer"]["world_size"] = 2;
    EXPECT_EQ(agcl::ReadCheckpointState(two, "c.agcl").world_size, 2);
  }
  auto refused = [&](const char * key, const nlohmann::json & value, const std::string & text) {
    nlohmann::json config = good;
    if (value.is_discarded())
      config["trainer"].erase(key);
    else
      config["trainer"][key] = value;
    try
    {
      agcl::ReadCheckpointState(config, "c.agcl");
      ADD_FAILURE() << key << " = " << value.dump() << " accepted";
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find("checkpoint 'c.agcl': " + text), std::string::npos) << e.what();
    }
  };
  const nlohmann::json missing = nlohmann::json(nlohmann::json::value_t::discarded);
  refused("stage", 7, "'trainer.stage' = 7: expected 0..3");
  refused("stage", -1, "'trainer.stage' = -1: expected 0..3");
  refused("stage", "1", "'trainer.stage' is missing or not an integer");
  refused("stage", 1.5, "'trainer.stage' is missing or not an integer");
  refused("stage", missing, "'trainer.stage' is missing or not an integer");
  refused("step", -4, "'trainer.step' = -4: expected 0..1099511627776");
  refused("step", uint64_t{ 18446744073709551615u }, "'trainer.step' = 18446744073709551615: expected 0..");
  refused("best_dice", 1.5, "'trainer.best_dice' = 1.5: expected -1 or 0..1");
  refused("best_dice", -0.5, "'trainer.best_dice' = -0.5: expected -1 or 0..1");
  refused("best_dice", nullptr, "'trainer.best_dice' is missing or not a number");
  refused("options", nlohmann::json::array(), "'trainer.options' is missing or not an object");
  refused("subjects", "s1", "'trainer.subjects' is not an array");
  refused("world_size", 0, "'trainer.world_size' = 0: expected 1..1048576");
  refused("world_size", "2", "'trainer.world_size' is missing or not an integer");
  for (const nlohmann::json & config :
       { nlohmann::json::object(), nlohmann::json({ { "trainer", 3 } }), nlohmann::json::array() })
  {
    try
    {
      agcl::ReadCheckpointState(config, "c.agcl");
      ADD_FAILURE() << config.dump() << " accepted";
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find("no 'trainer' object"), std::string::npos) << e.what();
    }
  }
}
