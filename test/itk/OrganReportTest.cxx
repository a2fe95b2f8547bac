/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAGCLModelStatistics.h"
#include "itkAGCLOrganReport.h"

#include <gtest/gtest.h>

#include <random>

namespace {
using Labels = itk::Image<unsigned char, 3>;
using Scores = itk::Image<unsigned char, 3>;
} // namespace

TEST(AGCLOrganReport, CountsVolumesAveragesScoresAndFlagsMissingOrgans)
{
  const double spacing[3] = { 0.7, 0.8, 2.5 };
  auto         labels = Labels::New();
  auto         scores = Scores::New();
  for (itk::ImageBase<3> * image :
       { static_cast<itk::ImageBase<3> *>(labels), static_cast<itk::ImageBase<3> *>(scores) })
  {
    image->SetRegions(Labels::SizeType{ { 7, 5, 4 } });
    image->SetSpacing(spacing);
  }
  labels->Allocate();
  scores->Allocate();
  std::mt19937 random(3);
  const size_t n = labels->GetBufferedRegion().GetNumberOfPixels();
  for (size_t i = 0; i < n; ++i)
  {
    const unsigned char label = std::vector<unsigned char>{ 0, 1, 6 }[random() % 3];
    labels->GetBufferPointer()[i] = label;
    // Organ voxels score 128..255, a few (a filled hole) 0; background 0.
    scores->GetBufferPointer()[i] =
      label == 0 || random() % 7 == 0 ? 0 : static_cast<unsigned char>(128 + random() % 128);
  }
  const auto report =
    itk::MakeOrganReport<Labels>(labels, scores, { { 1, "spleen" }, { 6, "liver" }, { 2, "kidney" } });
  ASSERT_EQ(report.organs.size(), 3u);
  for (const auto & organ : report.organs)
  {
    long   voxels = 0, scored = 0;
    double sum = 0;
    for (size_t i = 0; i < n; ++i)
    {
      if (labels->GetBufferPointer()[i] != organ.label)
        continue;
      ++voxels;
      if (scores->GetBufferPointer()[i] != 0)
      {
        ++scored;
        sum += scores->GetBufferPointer()[i] / 255.0;
      }
    }
    EXPECT_EQ(organ.voxels, static_cast<uint64_t>(voxels));
    EXPECT_NEAR(organ.volumeML, voxels * 0.7 * 0.8 * 2.5 / 1000.0, 1e-12);
    if (scored > 0)
      EXPECT_NEAR(organ.meanProbability, sum / scored, 1e-12);
    else
      EXPECT_TRUE(std::isnan(organ.meanProbability));
  }
  EXPECT_GT(report.organs[0].voxels, 0u);
  EXPECT_EQ(report.organs[0].warning, "");
  EXPECT_EQ(report.organs[2].voxels, 0u);
  EXPECT_EQ(report.organs[2].warning, "missing");
  EXPECT_EQ(report.Warnings(), std::vector<std::string>{ "kidney (label 2): missing" });
  // CSV: a header, one row per organ (no mean for the missing one), the statistics' source.
  const std::string csv = report.ToCsv();
  EXPECT_EQ(csv.rfind("organ,label,voxels,volume_ml,mean_probability,warning\nspleen,1,", 0), 0u) << csv;
  EXPECT_NE(csv.find("\nkidney,2,0,0.000,,missing\n# plausibility checked against: no statistics\n"), std::string::npos)
    << csv;
}

namespace {
// The report of a random label map of pixel type TLabel against a brute-force count per organ.
template <typename TLabel>
void
CheckReportAgainstBruteForce(const std::vector<int64_t> & values, const std::vector<int64_t> & asked)
{
  using LabelImage = itk::Image<TLabel, 3>;
  auto labels = LabelImage::New();
  auto scores = Scores::New();
  labels->SetRegions(typename LabelImage::SizeType{ { 9, 6, 5 } });
  scores->SetRegions(Scores::SizeType{ { 9, 6, 5 } });
  labels->Allocate();
  scores->Allocate();
  std::mt19937 random(11);
  const size_t n = labels->GetBufferedRegion().GetNumberOfPixels();
  for (size_t i = 0; i < n; ++i)
  {
    labels->GetBufferPointer()[i] = static_cast<TLabel>(values[random() % values.size()]);
    scores->GetBufferPointer()[i] = static_cast<unsigned char>(random() % 5 == 0 ? 0 : random() % 256);
  }
  std::vector<std::pair<int64_t, std::string>> organs;
  for (const int64_t value : asked)
    organs.emplace_back(value, "organ " + std::to_string(value));
  const auto report = itk::MakeOrganReport<LabelImage>(labels, scores, organs);
  ASSERT_EQ(report.organs.size(), asked.size());
  for (size_t o = 0; o < asked.size(); ++o)
  {
    uint64_t voxels = 0, scored = 0, sum = 0;
    for (size_t i = 0; i < n; ++i)
      if (static_cast<int64_t>(labels->GetBufferPointer()[i]) == asked[o])
      {
        ++voxels;
        scored += scores->GetBufferPointer()[i] != 0;
        sum += scores->GetBufferPointer()[i];
      }
    EXPECT_EQ(report.organs[o].label, asked[o]);
    EXPECT_EQ(report.organs[o].voxels, voxels) << "organ " << asked[o];
    if (scored > 0)
      EXPECT_NEAR(report.organs[o].meanProbability, sum / (255.0 * scored), 1e-12);
    EXPECT_EQ(report.organs[o].warning, voxels == 0 ? "missing" : "");
  }
}
} // namespace

// The one-pass table (8- and 16-bit labels, signed ones with negative values) and the per-organ
// passes (other types) against a brute-force count; organs asked for that the pixel type cannot
// hold are missing.
TEST(AGCLOrganReport, EveryLabelTypeCountsAsABruteForcePass)
{
  CheckReportAgainstBruteForce<unsigned char>({ 0, 1, 6, 255 }, { 255, 1, 7, 6, 300, -1 });
  CheckReportAgainstBruteForce<short>({ 0, -3, 2, 1000, -32768 }, { -3, 1000, -32768, 2, 40000, 5 });
  CheckReportAgainstBruteForce<unsigned short>({ 0, 65535, 2 }, { 65535, 2, 3, -2 });
  CheckReportAgainstBruteForce<int>({ 0, -70000, 70000, 1 }, { 70000, -70000, 1, 9 });
  CheckReportAgainstBruteForce<float>({ 0, 2, 5 }, { 5, 2, 4 });
}

namespace {
// W1 through the quantile functions (an independent route): the distributions put mass a[k]
// and b[k] at bin k's centre; W1 = integral over u in (0, 1) of |F^-1(u) - G^-1(u)| du.
double
QuantileW1(const std::vector<double> & a, const std::vector<double> & b, double width)
{
  std::vector<double> cuts = { 0.0, 1.0 };
  double              ca = 0, cb = 0;
  for (size_t k = 0; k < a.size(); ++k)
  {
    cuts.push_back(ca += a[k]);
    cuts.push_back(cb += b[k]);
  }
  std::sort(cuts.begin(), cuts.end());
  auto quantile = [width](const std::vector<double> & h, double u) {
    double c = 0;
    for (size_t k = 0; k < h.size(); ++k)
      if ((c += h[k]) >= u)
        return (k + 0.5) * width;
    return (h.size() - 0.5) * width;
  };
  double w = 0;
  for (size_t i = 1; i < cuts.size(); ++i)
    if (cuts[i] > cuts[i - 1] + 1e-15)
    {
      const double u = 0.5 * (cuts[i] + cuts[i - 1]);
      w += (cuts[i] - cuts[i - 1]) * std::abs(quantile(a, u) - quantile(b, u));
    }
  return w;
}
} // namespace

TEST(AGCLModelStatistics, WassersteinDistanceEqualsTheQuantileIntegral)
{
  std::mt19937 random(5);
  for (int trial = 0; trial < 20; ++trial)
  {
    std::vector<double> a(9), b(9);
    double              sa = 0, sb = 0;
    for (size_t k = 0; k < 9; ++k)
    {
      sa += a[k] = random() % 5;
      sb += b[k] = random() % 5 + (k == 4);
    }
    for (size_t k = 0; k < 9; ++k)
    {
      a[k] /= sa;
      b[k] /= sb;
    }
    EXPECT_NEAR(itk::WassersteinDistance1D(a, b, 9.0), QuantileW1(a, b, 9.0), 1e-9);
  }
  // All mass moved by three bins of 10 HU: 30 HU.
  EXPECT_NEAR(itk::WassersteinDistance1D({ 1, 0, 0, 0 }, { 0, 0, 0, 1 }, 10.0), 30.0, 1e-12);
  EXPECT_THROW(itk::WassersteinDistance1D({ 1 }, { 0.5, 0.5 }, 1.0), std::invalid_argument);
}

TEST(AGCLModelStatistics, PercentileAndHistogramMatchHandCounts)
{
  // numpy.percentile([1, 2, 3, 4, 10], q): position q/100 x 4 between order statistics.
  EXPECT_NEAR(itk::Percentile({ 10, 1, 4, 2, 3 }, 95), 8.8, 1e-12);
  EXPECT_NEAR(itk::Percentile({ 10, 1, 4, 2, 3 }, 5), 1.2, 1e-12);
  EXPECT_NEAR(itk::Percentile({ 7 }, 50), 7.0, 1e-12);
  auto                           image = itk::Image<short, 3>::New();
  itk::Image<short, 3>::SizeType size = { { 6, 1, 1 } };
  image->SetRegions(size);
  image->Allocate();
  const short values[6] = { -1000, -100, 0, 99, 100, 400 }; // window [-100, 300], 4 bins of 100 HU
  std::copy(values, values + 6, image->GetBufferPointer());
  EXPECT_EQ(itk::WindowedHistogram(image.GetPointer(), -100, 300, 4), (std::vector<double>{ 0.25, 0.5, 0.25, 0.0 }));
}

TEST(AGCLModelStatistics, ValidationRangesAndIntensityThresholdFlagWhatLiesOutside)
{
  auto report = [](double liver, double spleen) {
    itk::AGCLOrganReport r;
    r.organs = { { 6, "liver", 10, liver, 0.9, "" }, { 1, "spleen", 10, spleen, 0.9, "" } };
    return r;
  };
  std::vector<itk::AGCLOrganReport> reports;
  std::vector<std::vector<double>>  histograms;
  for (int i = 0; i < 11; ++i)
  {
    reports.push_back(report(1500 + 10 * i, 200));
    histograms.push_back(i % 2 ? std::vector<double>{ 0.5, 0.5, 0, 0 } : std::vector<double>{ 0.4, 0.6, 0, 0 });
  }
  EXPECT_THROW(
    itk::MakeAGCLStatistics(
      { reports.begin(), reports.begin() + 5 }, { histograms.begin(), histograms.begin() + 5 }, -100, 300, "too few"),
    std::invalid_argument); // percentiles of 5 volumes would be their extremes
  const auto statistics = itk::MakeAGCLStatistics(reports, histograms, -100, 300, "test");
  EXPECT_NEAR(statistics["organs"]["6"]["p5_ml"].get<double>(), 1505.0, 1e-9);  // 1500 + 0.5 x 10
  EXPECT_NEAR(statistics["organs"]["6"]["p95_ml"].get<double>(), 1595.0, 1e-9); // 1600 - 0.5 x 10
  // Mean histogram {0.4545.., 0.5454..}: the distances are 0.0454.. x 100 and 0.0545.. x 100 HU.
  EXPECT_NEAR(statistics["intensity"]["largest_validation_distance_hu"].get<double>(), 100.0 * 6 / 110, 1e-9);
  EXPECT_NEAR(statistics["intensity"]["threshold_hu"].get<double>(), 2 * 100.0 * 6 / 110, 1e-9);

  itk::AGCLOrganReport inside = report(1505 * 0.5 + 1, 299);
  itk::CheckAGCLStatistics(inside, statistics, { 0.45, 0.55, 0, 0 });
  EXPECT_TRUE(inside.Warnings().empty()) << inside.Warnings().front();
  EXPECT_EQ(inside.statistics, "test");
  itk::AGCLOrganReport outside = report(1595 * 1.5 + 1, 99);
  itk::CheckAGCLStatistics(outside, statistics, { 0, 0, 0, 1 }); // all mass at the top: far away
  ASSERT_EQ(outside.Warnings().size(), 3u);
  EXPECT_EQ(outside.Warnings()[0].rfind("intensities far from the training data", 0), 0u);
  EXPECT_EQ(outside.organs[0].warning.rfind("volume 2394 mL outside 752.5-2392 mL", 0), 0u)
    << outside.organs[0].warning;
  EXPECT_EQ(outside.organs[1].warning.rfind("volume 99 mL outside 100-300 mL", 0), 0u) << outside.organs[1].warning;
  EXPECT_NEAR(outside.intensityDistanceHU,
              itk::WassersteinDistance1D({ 0, 0, 0, 1 }, statistics["intensity"]["histogram"], 100.0),
              1e-12);
  nlohmann::json broken = statistics;
  broken["intensity"].erase("threshold_hu");
  itk::AGCLOrganReport any = report(1500, 200);
  EXPECT_THROW(itk::CheckAGCLStatistics(any, broken, { 1, 0, 0, 0 }), itk::ExceptionObject);
  nlohmann::json shortWindow = statistics;
  shortWindow["intensity"]["window"] = { 0 };
  EXPECT_THROW(itk::CheckAGCLStatistics(any, shortWindow, { 1, 0, 0, 0 }), itk::ExceptionObject);
}
