/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Losses against naive double-precision loops written here from the paper's formulas.
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/Device.h"
#include "agcl/DiceLoss.h"
#include "agcl/ModalityOrganClassifier.h"
#include "agcl/PretrainingMode.h"
#include "agcl/TorchCompat.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

namespace {
// Eq. 3 with our mean over the anchors that have a positive.
// s_ij = z_i . z_j / T, by plain loops in double precision.
std::vector<std::vector<double>>
NaiveSimilarities(const torch::Tensor & z, double temperature)
{
  const auto                       a = z.to(torch::kDouble).contiguous();
  const auto                       acc = a.accessor<double, 2>();
  const int64_t                    n = a.size(0), d = a.size(1);
  std::vector<std::vector<double>> s(n, std::vector<double>(n, 0.0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
    {
      for (int64_t c = 0; c < d; ++c)
        s[i][j] += acc[i][c] * acc[j][c];
      s[i][j] /= temperature;
    }
  return s;
}

double
NaiveEq3(const torch::Tensor & z, const std::vector<int64_t> & labels, double temperature)
{
  const auto    s = NaiveSimilarities(z, temperature);
  const int64_t n = z.size(0);
  auto          dot = [&s](int64_t i, int64_t j) { return s[i][j]; };
  double        total = 0;
  int64_t       anchors = 0;
  for (int64_t k = 0; k < n; ++k)
  {
    double denominator = 0;
    for (int64_t j = 0; j < n; ++j)
      if (j != k)
        denominator += std::exp(dot(k, j));
    double  sum = 0;
    int64_t count = 0;
    for (int64_t l = 0; l < n; ++l)
      if (l != k && labels[l] == labels[k])
      {
        sum += std::log(std::exp(dot(k, l)) / denominator);
        ++count;
      }
    if (count > 0)
    {
      total += -sum / count;
      ++anchors;
    }
  }
  return anchors > 0 ? total / anchors : 0.0;
}

// Eq. 2 (SimCLR): the positive of anchor k is its other view p(k) = k +- N; mean over 2N anchors.
double
NaiveEq2(const torch::Tensor & z, double temperature)
{
  const auto    s = NaiveSimilarities(z, temperature);
  const int64_t n2 = z.size(0), n = n2 / 2;
  auto          dot = [&s](int64_t i, int64_t j) { return s[i][j]; };
  double        total = 0;
  for (int64_t k = 0; k < n2; ++k)
  {
    const int64_t p = k < n ? k + n : k - n;
    double        denominator = 0;
    for (int64_t j = 0; j < n2; ++j)
      if (j != k)
        denominator += std::exp(dot(k, j));
    total += -std::log(std::exp(dot(k, p)) / denominator);
  }
  return total / n2;
}

torch::Tensor
RandomUnitVectors(int64_t n, int64_t d, uint64_t seed, torch::Dtype dtype = torch::kDouble)
{
  torch::manual_seed(seed);
  return torch::nn::functional::normalize(torch::randn({ n, d }, torch::kDouble),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1))
    .to(dtype);
}

torch::Tensor
LabelTensor(const std::vector<int64_t> & labels)
{
  return torch::tensor(labels, torch::kLong);
}

double
Relative(double a, double b)
{
  return std::abs(a - b) / std::max(std::abs(b), 1e-12);
}
} // namespace

TEST(ConditionalContrastiveLoss, MatchesNaiveEq3IncludingAnchorsWithoutPositive)
{
  // Labels 3 and 5 occur once: those anchors have no positive and are left out.
  const std::vector<int64_t>       labels{ 0, 0, 1, 1, 2, 3, 0, 1, 4, 4, 5, 2 };
  const torch::Tensor              z = RandomUnitVectors(12, 8, 1);
  agcl::ConditionalContrastiveLoss loss;
  const double                     reference = NaiveEq3(z, labels, 0.1);
  EXPECT_LT(Relative(loss(z, LabelTensor(labels)).item<double>(), reference), 1e-12);
  EXPECT_LT(Relative(loss(z.to(torch::kFloat), LabelTensor(labels)).item<double>(), reference), 1e-5);
}

TEST(ConditionalContrastiveLoss, AnchorSumsOverDisjointRowRangesAddUpToTheNaiveEq3)
{
  // The distributed loss gives each rank a range of anchors against every row: the ranges' sums
  // over their anchors with a positive, divided by the total count, must give Eq. 3 (naive,
  // double). Ranges of 0, 5 and 7 rows; labels 3 and 5 have no positive.
  const std::vector<int64_t>       labels{ 0, 0, 1, 1, 2, 3, 0, 1, 4, 4, 5, 2 };
  const torch::Tensor              z = RandomUnitVectors(12, 8, 11);
  agcl::ConditionalContrastiveLoss loss;
  double                           total = 0;
  int64_t                          anchors = 0;
  for (const auto & [first, count] : std::vector<std::pair<int64_t, int64_t>>{ { 0, 0 }, { 0, 5 }, { 5, 7 } })
  {
    const auto [sum, number] = loss->anchorSum(z, LabelTensor(labels), first, count);
    total += sum.item<double>();
    anchors += number.item<int64_t>();
  }
  EXPECT_EQ(anchors, 10);
  EXPECT_LT(Relative(total / anchors, NaiveEq3(z, labels, 0.1)), 1e-12);
  EXPECT_THROW(loss->anchorSum(z, LabelTensor(labels), 5, 8), std::invalid_argument);
  EXPECT_THROW(loss->anchorSum(z, LabelTensor(labels), -1, 2), std::invalid_argument);
}

TEST(ConditionalContrastiveLoss, PatchIndexLabelsGiveNaiveEq2)
{
  const int64_t                    n = 7;
  const torch::Tensor              z = RandomUnitVectors(2 * n, 16, 2);
  const torch::Tensor              modality = torch::zeros({ n }, torch::kLong);
  const torch::Tensor              organ = torch::zeros({ n }, torch::kLong); // all the same organ: SSCL must ignore it
  const torch::Tensor              labels = agcl::ContrastiveLabels(agcl::PretrainingMode::SSCL, modality, organ, 12);
  agcl::ConditionalContrastiveLoss loss;
  EXPECT_LT(Relative(loss(z, labels).item<double>(), NaiveEq2(z, 0.1)), 1e-12);
}

TEST(ConditionalContrastiveLoss, AnchorWithoutPositiveIsLeftOut)
{
  const torch::Tensor              z = RandomUnitVectors(6, 4, 3).requires_grad_(true);
  agcl::ConditionalContrastiveLoss loss;
  const torch::Tensor              value = loss(z, LabelTensor({ 0, 1, 2, 3, 4, 5 }));
  EXPECT_EQ(value.item<double>(), 0.0);
  value.backward();
  EXPECT_TRUE(torch::isfinite(z.grad()).all().item<bool>());
  EXPECT_EQ(z.grad().abs().max().item<double>(), 0.0);
}

TEST(ConditionalContrastiveLoss, GradientMatchesCentralFiniteDifferences)
{
  torch::manual_seed(4);
  const torch::Tensor              base = torch::randn({ 6, 4 }, torch::kDouble) * 0.5;
  const std::vector<int64_t>       labels{ 0, 1, 0, 1, 2, 0 };
  agcl::ConditionalContrastiveLoss loss(agcl::ConditionalContrastiveLossOptions().temperature(0.5));
  torch::Tensor                    z = base.clone().requires_grad_(true);
  loss(z, LabelTensor(labels)).backward();
  const auto   grad = z.grad().accessor<double, 2>();
  const double h = 1e-6;
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t c = 0; c < 4; ++c)
    {
      torch::Tensor plus = base.clone(), minus = base.clone();
      plus[i][c] += h;
      minus[i][c] -= h;
      const double numeric = (NaiveEq3(plus, labels, 0.5) - NaiveEq3(minus, labels, 0.5)) / (2 * h);
      EXPECT_NEAR(grad[i][c], numeric, 1e-7) << "element " << i << "," << c;
    }
}

TEST(ConditionalContrastiveLoss, TemperatureScalesSimilaritiesAsTheFormulaSays)
{
  const std::vector<int64_t> labels{ 0, 0, 1, 1, 2, 2, 0, 1 };
  const torch::Tensor        z = RandomUnitVectors(8, 5, 5);
  for (double t : { 0.05, 0.1, 0.5, 1.0 })
  {
    agcl::ConditionalContrastiveLoss loss(agcl::ConditionalContrastiveLossOptions().temperature(t));
    EXPECT_LT(Relative(loss(z, LabelTensor(labels)).item<double>(), NaiveEq3(z, labels, t)), 1e-12) << t;
    // z.z/T is unchanged by z -> c z, T -> c^2 T.
    agcl::ConditionalContrastiveLoss scaled(agcl::ConditionalContrastiveLossOptions().temperature(4.0 * t));
    EXPECT_LT(Relative(scaled(2.0 * z, LabelTensor(labels)).item<double>(), NaiveEq3(z, labels, t)), 1e-12) << t;
  }
  // A lower temperature sharpens: for well-separated classes the loss falls with T.
  const torch::Tensor clustered = torch::cat({ z.slice(0, 0, 1).repeat({ 4, 1 }), z.slice(0, 1, 2).repeat({ 4, 1 }) });
  const torch::Tensor twoClasses = LabelTensor({ 0, 0, 0, 0, 1, 1, 1, 1 });
  agcl::ConditionalContrastiveLoss cold(agcl::ConditionalContrastiveLossOptions().temperature(0.05));
  agcl::ConditionalContrastiveLoss warm(agcl::ConditionalContrastiveLossOptions().temperature(1.0));
  EXPECT_LT(cold(clustered, twoClasses).item<double>(), warm(clustered, twoClasses).item<double>());
}

TEST(ConditionalContrastiveLoss, Bf16AutocastOnCpuStaysWithin1e2AndReturnsFloat32)
{
  const std::vector<int64_t>       labels{ 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 4, 4 };
  const torch::Tensor              z = RandomUnitVectors(16, 32, 6);
  const double                     reference = NaiveEq3(z, labels, 0.1);
  agcl::ConditionalContrastiveLoss loss;
  agcl::AutocastGuard              guard(c10::DeviceType::CPU, torch::kBFloat16);
  const torch::Tensor              value = loss(z.to(torch::kFloat), LabelTensor(labels));
  EXPECT_EQ(value.scalar_type(), torch::kFloat);
  EXPECT_LT(Relative(value.item<double>(), reference), 1e-2);
}

TEST(ConditionalContrastiveLoss, BadInputNamesTheArgument)
{
  agcl::ConditionalContrastiveLoss loss;
  const torch::Tensor              z = RandomUnitVectors(4, 3, 7);
  auto expectMessage = [&](const torch::Tensor & e, const torch::Tensor & l, const std::string & text) {
    try
    {
      loss(e, l);
      ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
    }
    catch (const std::invalid_argument & error)
    {
      EXPECT_NE(std::string(error.what()).find(text), std::string::npos) << error.what();
    }
  };
  expectMessage(z.flatten(), LabelTensor({ 0, 0, 1, 1 }), "embeddings has shape");
  expectMessage(z, LabelTensor({ 0, 0, 1 }), "labels has shape");
  expectMessage(z, torch::zeros({ 4 }), "labels has dtype");
  expectMessage(z.slice(0, 0, 1), LabelTensor({ 0 }), "2N >= 2");
  expectMessage(z.to(torch::kLong), LabelTensor({ 0, 0, 1, 1 }), "floating-point");
  torch::Tensor bad = z.clone();
  bad[1][1] = std::nan("");
  expectMessage(bad, LabelTensor({ 0, 0, 1, 1 }), "NaN");
  EXPECT_THROW(agcl::ConditionalContrastiveLoss(agcl::ConditionalContrastiveLossOptions().temperature(0)),
               std::invalid_argument);
}

TEST(PretrainingMode, LabelVectorsForEachMode)
{
  const torch::Tensor modality = LabelTensor({ 0, 1, 1 });
  const torch::Tensor organ = LabelTensor({ 2, 2, 5 });
  EXPECT_TRUE(torch::equal(agcl::ContrastiveLabels(agcl::PretrainingMode::AGCL, modality, organ, 12),
                           LabelTensor({ 2, 14, 17, 2, 14, 17 })));
  EXPECT_TRUE(torch::equal(agcl::ContrastiveLabels(agcl::PretrainingMode::SupCon, modality, organ, 12),
                           LabelTensor({ 2, 2, 5, 2, 2, 5 })));
  EXPECT_TRUE(torch::equal(agcl::ContrastiveLabels(agcl::PretrainingMode::SSCL, modality, organ, 12),
                           LabelTensor({ 0, 1, 2, 0, 1, 2 })));
  EXPECT_THROW(agcl::ContrastiveLabels(agcl::PretrainingMode::CE, modality, organ, 12), std::invalid_argument);
  EXPECT_THROW(agcl::ContrastiveLabels(agcl::PretrainingMode::AGCL, modality, LabelTensor({ 2, 12, 0 }), 12),
               std::invalid_argument);
  EXPECT_EQ(agcl::ParsePretrainingMode("SupCon"), agcl::PretrainingMode::SupCon);
  EXPECT_EQ(agcl::ToString(agcl::ParsePretrainingMode("sscl")), "sscl");
  EXPECT_THROW(agcl::ParsePretrainingMode("simclr"), std::invalid_argument);
}

TEST(PretrainingMode, WithOneModalityEq3ConditionsOnTheClassAloneAsSupCon)
{
  // A cohort of one source (PASCAL VOC's photographs: one "modality" value): Eq. 3's positives
  // are the patches of the same class, SupCon's rule; the loss is the naive Eq. 3 on the classes.
  const torch::Tensor        modality = LabelTensor({ 0, 0, 0, 0, 0, 0 });
  const std::vector<int64_t> classes{ 3, 7, 3, 0, 7, 19 };
  const torch::Tensor        organ = LabelTensor(classes);
  const torch::Tensor        eq3 = agcl::ContrastiveLabels(agcl::PretrainingMode::AGCL, modality, organ, 20);
  EXPECT_TRUE(torch::equal(eq3, agcl::ContrastiveLabels(agcl::PretrainingMode::SupCon, modality, organ, 20)));
  const torch::Tensor  z = RandomUnitVectors(12, 8, 4);
  std::vector<int64_t> twoViews = classes;
  twoViews.insert(twoViews.end(), classes.begin(), classes.end());
  agcl::ConditionalContrastiveLoss loss;
  EXPECT_LT(Relative(loss(z, eq3).item<double>(), NaiveEq3(z, twoViews, 0.1)), 1e-12);
}

namespace {
// Eq. 1 as read in DiceLoss.h: mean over samples and channels of the smoothed soft Dice.
double
NaiveDice(const torch::Tensor & logits, const torch::Tensor & target, double smooth)
{
  const auto    l = logits.to(torch::kDouble).reshape({ logits.size(0), logits.size(1), -1 }).contiguous();
  const auto    t = target.to(torch::kLong).reshape({ target.size(0), -1 }).contiguous();
  const auto    la = l.accessor<double, 3>();
  const auto    ta = t.accessor<int64_t, 2>();
  const int64_t n = l.size(0), c = l.size(1), v = l.size(2);
  double        sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
    {
      double inter = 0, ps = 0, ys = 0;
      for (int64_t p = 0; p < v; ++p)
      {
        double z = 0;
        for (int64_t j = 0; j < c; ++j)
          z += std::exp(la[i][j][p]);
        const double s = std::exp(la[i][k][p]) / z;
        const double y = ta[i][p] == k ? 1.0 : 0.0;
        inter += s * y;
        ps += s;
        ys += y;
      }
      sum += (2 * inter + smooth) / (ps + ys + smooth);
    }
  return 1.0 - sum / (n * c);
}
} // namespace

TEST(DiceLoss, MatchesNaiveEq1OnBinaryPatches)
{
  torch::manual_seed(8);
  const torch::Tensor logits = torch::randn({ 3, 2, 5, 5 }, torch::kDouble);
  const torch::Tensor target = torch::randint(0, 2, { 3, 5, 5 }, torch::kLong);
  agcl::DiceLoss      loss;
  EXPECT_LT(Relative(loss(logits, target).item<double>(), NaiveDice(logits, target, 1e-5)), 1e-12);
  EXPECT_LT(Relative(loss(logits.to(torch::kFloat), target).item<double>(), NaiveDice(logits, target, 1e-5)), 1e-5);
}

TEST(DiceLoss, MatchesNaiveEq1ForMultiClass3D)
{
  torch::manual_seed(9);
  const torch::Tensor logits = torch::randn({ 2, 4, 3, 3, 3 }, torch::kDouble);
  const torch::Tensor target = torch::randint(0, 4, { 2, 3, 3, 3 }, torch::kLong);
  agcl::DiceLoss      loss;
  EXPECT_LT(Relative(loss(logits, target).item<double>(), NaiveDice(logits, target, 1e-5)), 1e-12);
}

TEST(DiceLoss, IgnoredPixelsCountInNeitherPredictionNorTarget)
{
  // Target -1 (void): the loss equals the mean over samples of Eq. 1 on each sample's valid
  // pixels alone (1 - mean over n and c of dice_nc = mean over n of 1 - mean over c).
  torch::manual_seed(12);
  const torch::Tensor logits = torch::randn({ 3, 3, 4, 5 }, torch::kDouble);
  torch::Tensor       target = torch::randint(0, 3, { 3, 4, 5 }, torch::kLong);
  target.masked_fill_(torch::rand({ 3, 4, 5 }) < 0.3, -1);
  double reference = 0.0;
  for (int64_t n = 0; n < 3; ++n)
  {
    const torch::Tensor valid = target[n].ge(0).flatten();
    const torch::Tensor l =
      logits[n].reshape({ 3, -1 }).index({ torch::indexing::Slice(), valid }).unsqueeze(0).unsqueeze(2);
    const torch::Tensor t = target[n].flatten().masked_select(valid).view({ 1, 1, -1 });
    reference += NaiveDice(l, t, 1e-5) / 3.0;
  }
  agcl::DiceLoss loss;
  EXPECT_LT(Relative(loss(logits, target).item<double>(), reference), 1e-12);
  EXPECT_THROW(loss(logits, torch::full({ 3, 4, 5 }, -2, torch::kLong)), std::invalid_argument);
}

TEST(DiceLoss, PerfectPredictionScoresZeroAndEmptyOrganIsSmoothed)
{
  torch::Tensor target = torch::zeros({ 2, 4, 4 }, torch::kLong);
  target[0].slice(0, 1, 3).fill_(1); // sample 1 has no organ at all
  const torch::Tensor logits = torch::stack({ 1 - target, target }, 1).to(torch::kDouble) * 100.0;
  agcl::DiceLoss      loss;
  EXPECT_LT(loss(logits, target).item<double>(), 1e-9);
}

TEST(DiceLoss, BadInputNamesTheArgument)
{
  agcl::DiceLoss loss;
  EXPECT_THROW(loss(torch::zeros({ 2, 2, 4, 4 }), torch::zeros({ 2, 4, 5 }, torch::kLong)), std::invalid_argument);
  EXPECT_THROW(loss(torch::zeros({ 2, 2, 4, 4 }), torch::full({ 2, 4, 4 }, 2, torch::kLong)), std::invalid_argument);
  EXPECT_THROW(loss(torch::zeros({ 2, 1, 4, 4 }), torch::zeros({ 2, 4, 4 }, torch::kLong)), std::invalid_argument);
  EXPECT_THROW(loss(torch::full({ 2, 2, 4, 4 }, INFINITY), torch::zeros({ 2, 4, 4 }, torch::kLong)),
               std::invalid_argument);
}

TEST(ModalityOrganClassifier, CrossEntropyOverModalityTimesOrganClasses)
{
  torch::manual_seed(10);
  agcl::ModalityOrganClassifier classifier(agcl::ModalityOrganClassifierOptions(8, 2, 3));
  classifier->to(torch::kDouble);
  const torch::Tensor representation = torch::randn({ 4, 8 }, torch::kDouble);
  const torch::Tensor logits = classifier(representation);
  ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{ 4, 6 }));
  const std::vector<int64_t> m{ 0, 1, 1, 0 }, o{ 2, 0, 2, 1 };
  double                     reference = 0;
  const auto                 acc = logits.accessor<double, 2>();
  for (int i = 0; i < 4; ++i)
  {
    double z = 0;
    for (int j = 0; j < 6; ++j)
      z += std::exp(acc[i][j]);
    reference += -std::log(std::exp(acc[i][m[i] * 3 + o[i]]) / z) / 4;
  }
  EXPECT_LT(Relative(classifier->Loss(logits, LabelTensor(m), LabelTensor(o)).item<double>(), reference), 1e-12);
  EXPECT_THROW(classifier(torch::randn({ 4, 7 })), std::invalid_argument);
}

TEST(ConditionalContrastiveLoss, Bf16AutocastOnCudaAt2N4096)
{
  if (!agcl::CudaAvailable())
  {
    GTEST_SKIP() << "no CUDA device";
  }
  // 2N = 4096, d = 256: the GPU batch size the loss must handle. The float64 CPU value is the
  // reference (that path agrees with the naive Eq. 3 loop to 1e-12 in the tests above).
  const torch::Tensor z = RandomUnitVectors(4096, 256, 14);
  torch::manual_seed(15);
  const torch::Tensor              labels = torch::randint(0, 24, { 4096 }, torch::kLong);
  agcl::ConditionalContrastiveLoss loss;
  const double                     reference = loss(z, labels).item<double>();
  const torch::Tensor              zg = z.to(torch::kCUDA, torch::kFloat).requires_grad_(true);
  torch::Tensor                    value;
  {
    agcl::AutocastGuard guard(c10::DeviceType::CUDA, torch::kBFloat16);
    value = loss(zg, labels.to(torch::kCUDA));
  }
  EXPECT_EQ(value.scalar_type(), torch::kFloat);
  EXPECT_LT(Relative(value.item<double>(), reference), 1e-2);
  value.backward();
  EXPECT_TRUE(torch::isfinite(zg.grad()).all().item<bool>());
  // float32 on the GPU without autocast agrees much more closely.
  EXPECT_LT(Relative(loss(z.to(torch::kCUDA, torch::kFloat), labels.to(torch::kCUDA)).item<double>(), reference), 1e-5);
}
