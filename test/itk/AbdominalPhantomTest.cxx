/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The phantom measured against shared/phantom-reference.md (not against the generator's
// parameters): volumes, tube diameters, interior HU per phase, noise, anatomical relations,
// the overlap of non-contrast intensities, determinism and bad parameters.
#include "itkAbdominalPhantomImageSource.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace {
using Source = itk::AbdominalPhantomImageSource;

struct Volume
{
  std::vector<short>         hu;
  std::vector<unsigned char> label;
  int64_t                    nx{ 0 }, ny{ 0 }, nz{ 0 };
  double                     sx{ 0 }, sy{ 0 }, sz{ 0 }, ox{ 0 }, oy{ 0 }, oz{ 0 };
  double                     noiseSigma{ 0 };

  int64_t
  Index(int64_t i, int64_t j, int64_t k) const
  {
    return (k * ny + j) * nx + i;
  }
  double
  VoxelML() const
  {
    return sx * sy * sz / 1000.0;
  }
};

Volume
Generate(uint64_t seed, Source::ModalityEnum modality, unsigned nx, unsigned ny, unsigned nz)
{
  auto             source = Source::New();
  Source::SizeType size{ { nx, ny, nz } };
  source->SetSize(size);
  source->SetSeed(seed);
  source->SetModality(modality);
  source->Update();
  Volume v;
  v.nx = nx;
  v.ny = ny;
  v.nz = nz;
  const auto * ct = source->GetOutput();
  v.hu.assign(ct->GetBufferPointer(), ct->GetBufferPointer() + v.nx * v.ny * v.nz);
  const auto * labels = source->GetLabelOutput()->GetBufferPointer();
  v.label.assign(labels, labels + v.nx * v.ny * v.nz);
  v.sx = ct->GetSpacing()[0];
  v.sy = ct->GetSpacing()[1];
  v.sz = ct->GetSpacing()[2];
  v.ox = ct->GetOrigin()[0];
  v.oy = ct->GetOrigin()[1];
  v.oz = ct->GetOrigin()[2];
  v.noiseSigma = source->GetNoiseSigma();
  return v;
}

// Voxels of `organ` whose 6 neighbours all belong to it: at least one voxel from the boundary.
std::vector<int64_t>
Interior(const Volume & v, unsigned char organ)
{
  std::vector<int64_t> out;
  for (int64_t k = 1; k + 1 < v.nz; ++k)
    for (int64_t j = 1; j + 1 < v.ny; ++j)
      for (int64_t i = 1; i + 1 < v.nx; ++i)
      {
        const int64_t c = v.Index(i, j, k);
        if (v.label[c] == organ && v.label[c - 1] == organ && v.label[c + 1] == organ && v.label[c - v.nx] == organ &&
            v.label[c + v.nx] == organ && v.label[c - v.nx * v.ny] == organ && v.label[c + v.nx * v.ny] == organ)
          out.push_back(c);
      }
  return out;
}

double
Mean(const Volume & v, const std::vector<int64_t> & voxels)
{
  double sum = 0;
  for (int64_t c : voxels)
    sum += v.hu[c];
  return sum / std::max<size_t>(1, voxels.size());
}

double
StandardDeviation(const Volume & v, const std::vector<int64_t> & voxels)
{
  const double mean = Mean(v, voxels);
  double       sum = 0;
  for (int64_t c : voxels)
    sum += (v.hu[c] - mean) * (v.hu[c] - mean);
  return std::sqrt(sum / std::max<size_t>(1, voxels.size() - 1));
}

struct Stats
{
  int64_t count{ 0 };
  double  cx{ 0 }, cy{ 0 }, cz{ 0 }; // centroid, mm
  double  xmin{ 1e9 }, xmax{ -1e9 }, zmax{ -1e9 };
};

std::map<int, Stats>
OrganStats(const Volume & v)
{
  std::map<int, Stats> s;
  for (int64_t k = 0; k < v.nz; ++k)
    for (int64_t j = 0; j < v.ny; ++j)
      for (int64_t i = 0; i < v.nx; ++i)
      {
        const int l = v.label[v.Index(i, j, k)];
        if (l == 0)
          continue;
        Stats &      st = s[l];
        const double x = v.ox + i * v.sx, y = v.oy + j * v.sy, z = v.oz + k * v.sz;
        ++st.count;
        st.cx += x;
        st.cy += y;
        st.cz += z;
        st.xmin = std::min(st.xmin, x);
        st.xmax = std::max(st.xmax, x);
        st.zmax = std::max(st.zmax, z);
      }
  for (auto & [l, st] : s)
  {
    st.cx /= st.count;
    st.cy /= st.count;
    st.cz /= st.count;
  }
  return s;
}

// Reference ranges (phantom-reference.md).
const std::map<int, std::pair<double, double>> kVolumeML = {
  { 1, { 150, 250 } },   { 2, { 120, 170 } }, { 3, { 120, 170 } }, { 4, { 30, 50 } },
  { 6, { 1200, 1800 } }, { 7, { 200, 500 } }, { 11, { 70, 90 } },
};
struct HU
{
  double ncLow, ncHigh, pvLow, pvHigh;
};
const std::map<int, HU> kHU = {
  { 1, { 40, 50, 110, 130 } },  { 2, { 25, 35, 150, 200 } }, { 3, { 25, 35, 150, 200 } }, { 4, { 0, 20, 0, 20 } },
  { 5, { 30, 45, 60, 90 } },    { 6, { 50, 65, 100, 130 } }, { 8, { 35, 50, 130, 180 } }, { 9, { 35, 50, 110, 150 } },
  { 10, { 35, 50, 150, 200 } }, { 11, { 35, 45, 90, 120 } }, { 12, { 10, 30, 40, 70 } },
};

class AbdominalPhantomCohort : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    // Six subjects per modality at 128 x 128 x 64 (2.7 x 2.7 x 3.9 mm).
    for (uint64_t seed = 1; seed <= 6; ++seed)
    {
      s_NonContrast.push_back(Generate(seed, Source::ModalityEnum::NonContrast, 128, 128, 64));
      s_Contrast.push_back(Generate(seed, Source::ModalityEnum::PortalVenous, 128, 128, 64));
    }
  }
  static std::vector<Volume> s_NonContrast, s_Contrast;
};
std::vector<Volume> AbdominalPhantomCohort::s_NonContrast, AbdominalPhantomCohort::s_Contrast;

} // namespace

TEST_F(AbdominalPhantomCohort, EveryOrganInEverySubjectAndBothPhasesShareTheAnatomy)
{
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const auto stats = OrganStats(s_Contrast[s]);
    for (int organ = 1; organ <= 12; ++organ)
      EXPECT_TRUE(stats.count(organ) && stats.at(organ).count > 0) << "subject " << s + 1 << " lacks organ " << organ;
    EXPECT_EQ(s_Contrast[s].label, s_NonContrast[s].label) << "subject " << s + 1;
  }
}

TEST_F(AbdominalPhantomCohort, OrganVolumesInsideTheReferenceRanges)
{
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const auto stats = OrganStats(s_Contrast[s]);
    for (const auto & [organ, range] : kVolumeML)
    {
      const double ml = stats.at(organ).count * s_Contrast[s].VoxelML();
      EXPECT_GE(ml, range.first) << "subject " << s + 1 << " organ " << organ;
      EXPECT_LE(ml, range.second) << "subject " << s + 1 << " organ " << organ;
    }
  }
}

TEST_F(AbdominalPhantomCohort, VerticalTubeDiametersFromAxialCrossSections)
{
  // Equivalent-circle diameter of each axial cross-section; the median over the slices (robust to
  // the tube's ends and junctions), in mm. Reference: aorta 20-25, IVC ~25, esophagus ~20.
  const std::map<int, std::pair<double, double>> diameter = { { 8, { 20, 25 } }, { 9, { 21, 29 } }, { 5, { 16, 24 } } };
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const Volume & v = s_Contrast[s];
    for (const auto & [organ, range] : diameter)
    {
      std::vector<double> diameters;
      for (int64_t k = 0; k < v.nz; ++k)
      {
        int64_t area = 0;
        for (int64_t j = 0; j < v.ny; ++j)
          for (int64_t i = 0; i < v.nx; ++i)
            area += v.label[v.Index(i, j, k)] == organ;
        if (area > 0)
          diameters.push_back(2.0 * std::sqrt(area * v.sx * v.sy / M_PI));
      }
      ASSERT_GT(diameters.size(), 3u) << "organ " << organ;
      std::nth_element(diameters.begin(), diameters.begin() + diameters.size() / 2, diameters.end());
      const double mean = diameters[diameters.size() / 2];
      EXPECT_GE(mean, range.first) << "subject " << s + 1 << " organ " << organ;
      EXPECT_LE(mean, range.second) << "subject " << s + 1 << " organ " << organ;
    }
  }
}

TEST_F(AbdominalPhantomCohort, InteriorIntensitiesInsideTheReferenceRangesForBothPhases)
{
  for (int phase = 0; phase < 2; ++phase)
  {
    const auto & cohort = phase == 0 ? s_NonContrast : s_Contrast;
    for (size_t s = 0; s < cohort.size(); ++s)
      for (const auto & [organ, range] : kHU)
      {
        const auto interior = Interior(cohort[s], organ);
        if (interior.size() < 20) // the adrenal has no interior at this resolution: tested below
          continue;
        const double mean = Mean(cohort[s], interior);
        const double lo = phase == 0 ? range.ncLow : range.pvLow, hi = phase == 0 ? range.ncHigh : range.pvHigh;
        EXPECT_GE(mean, lo) << (phase ? "PV" : "NC") << " subject " << s + 1 << " organ " << organ;
        EXPECT_LE(mean, hi) << (phase ? "PV" : "NC") << " subject " << s + 1 << " organ " << organ;
      }
  }
}

TEST_F(AbdominalPhantomCohort, NoiseInTheLiverIsThatOfRoutineCT)
{
  for (const Volume & v : s_NonContrast)
  {
    const double sd = StandardDeviation(v, Interior(v, 6));
    EXPECT_GE(sd, 10.0);
    EXPECT_LE(sd, 20.0);
  }
}

TEST_F(AbdominalPhantomCohort, AnatomicalRelations)
{
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const Volume & v = s_Contrast[s];
    const auto     st = OrganStats(v);
    double         boneX = 0;
    int64_t        bone = 0;
    for (int64_t c = 0; c < static_cast<int64_t>(v.hu.size()); ++c)
      if (v.label[c] == 0 && v.hu[c] > 500)
      {
        boneX += v.ox + (c % v.nx) * v.sx;
        ++bone;
      }
    ASSERT_GT(bone, 0) << "no bone voxels (> 500 HU) to locate the spine";
    const double spine = boneX / bone; // x of the spine, measured from the bone voxels
    SCOPED_TRACE("subject " + std::to_string(s + 1));
    EXPECT_LT(st.at(6).cx, spine);           // liver right of the spine (x grows to the left)
    EXPECT_GT(st.at(1).cx, spine);           // spleen left
    EXPECT_LT(st.at(2).zmax, st.at(3).zmax); // right kidney's upper pole lower than the left's
    EXPECT_GT(st.at(8).cx, st.at(9).cx);     // aorta left of the IVC
    EXPECT_LT(st.at(11).xmin, spine);        // pancreas crosses the midline
    EXPECT_GT(st.at(11).xmax, spine);
    // Liver and right kidney within 2 voxels of each other.
    bool touching = false;
    for (int64_t k = 0; k < v.nz && !touching; ++k)
      for (int64_t j = 0; j < v.ny && !touching; ++j)
        for (int64_t i = 0; i < v.nx && !touching; ++i)
        {
          if (v.label[v.Index(i, j, k)] != 2)
            continue;
          for (int64_t dk = -2; dk <= 2 && !touching; ++dk)
            for (int64_t dj = -2; dj <= 2 && !touching; ++dj)
              for (int64_t di = -2; di <= 2 && !touching; ++di)
              {
                const int64_t a = i + di, b = j + dj, c = k + dk;
                if (a >= 0 && a < v.nx && b >= 0 && b < v.ny && c >= 0 && c < v.nz && v.label[v.Index(a, b, c)] == 6)
                  touching = true;
              }
        }
    EXPECT_TRUE(touching);
  }
}

TEST_F(AbdominalPhantomCohort, NoThresholdSeparatesNonContrastSpleenPancreasAndKidneys)
{
  // For each pair of organs, the best single threshold misclassifies a large share of interior voxels.
  const std::vector<int> organs{ 1, 11, 2, 3 };
  for (const Volume & v : s_NonContrast)
    for (size_t a = 0; a < organs.size(); ++a)
      for (size_t b = a + 1; b < organs.size(); ++b)
      {
        const auto ia = Interior(v, organs[a]), ib = Interior(v, organs[b]);
        ASSERT_GT(ia.size(), 20u);
        ASSERT_GT(ib.size(), 20u);
        double best = 0;
        for (int t = -100; t <= 150; ++t)
        {
          double belowA = 0, belowB = 0;
          for (int64_t c : ia)
            belowA += v.hu[c] < t;
          for (int64_t c : ib)
            belowB += v.hu[c] < t;
          const double fa = belowA / ia.size(), fb = belowB / ib.size();
          // Balanced accuracy of "below t is A" or "below t is B".
          best = std::max({ best, 0.5 * (fa + 1 - fb), 0.5 * (fb + 1 - fa) });
        }
        EXPECT_LT(best, 0.85) << "organs " << organs[a] << " and " << organs[b];
      }
}

TEST(AbdominalPhantom, SameSeedIsBitIdenticalAndAnotherSeedDiffers)
{
  const Volume a = Generate(9, Source::ModalityEnum::PortalVenous, 64, 64, 32);
  const Volume b = Generate(9, Source::ModalityEnum::PortalVenous, 64, 64, 32);
  const Volume c = Generate(10, Source::ModalityEnum::PortalVenous, 64, 64, 32);
  EXPECT_EQ(a.hu, b.hu);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(a.label, c.label);
}

TEST(AbdominalPhantom, FieldOfViewIsFixedWhateverTheVoxelCount)
{
  const Volume small = Generate(2, Source::ModalityEnum::NonContrast, 64, 64, 32);
  EXPECT_NEAR(small.sx * 64, 350.0, 1e-9);
  EXPECT_NEAR(small.sz * 32, 250.0, 1e-9);
}

TEST(AbdominalPhantom, BadParametersAreRefused)
{
  auto             source = Source::New();
  Source::SizeType size{ { 64, 0, 32 } };
  source->SetSize(size);
  EXPECT_THROW(source->Update(), itk::ExceptionObject);
  EXPECT_THROW(Source::ParseModality("arterial"), itk::ExceptionObject);
  auto                    other = Source::New();
  Source::FieldOfViewType fov;
  fov.Fill(-1.0);
  other->SetFieldOfView(fov);
  EXPECT_THROW(other->Update(), itk::ExceptionObject);
}

TEST(AbdominalPhantom, ThinAdrenalAndStomachWallAtTheDefaultResolution)
{
  for (auto modality : { Source::ModalityEnum::NonContrast, Source::ModalityEnum::PortalVenous })
  {
    const bool   pv = modality == Source::ModalityEnum::PortalVenous;
    const Volume v = Generate(4, modality, 512, 512, 100);
    int64_t      adrenal = 0;
    for (unsigned char l : v.label)
      adrenal += l == 12;
    const double ml = adrenal * v.VoxelML();
    EXPECT_GE(ml, 4.0);
    EXPECT_LE(ml, 6.0);
    const auto interior = Interior(v, 12);
    ASSERT_GT(interior.size(), 50u);
    const double mean = Mean(v, interior);
    EXPECT_GE(mean, pv ? 40.0 : 10.0);
    EXPECT_LE(mean, pv ? 70.0 : 30.0);
    // Stomach wall: stomach voxels 2-4 voxels in from the stomach's in-plane boundary (median HU,
    // robust to the few places where the slice cuts the wall tangentially).
    std::vector<short> wall;
    for (int64_t k = 0; k < v.nz; ++k)
      for (int64_t j = 4; j + 4 < v.ny; ++j)
        for (int64_t i = 4; i + 4 < v.nx; ++i)
        {
          if (v.label[v.Index(i, j, k)] != 7)
            continue;
          int depth = 5;
          for (int d = 1; d <= 4 && depth == 5; ++d)
            if (v.label[v.Index(i - d, j, k)] != 7 || v.label[v.Index(i + d, j, k)] != 7 ||
                v.label[v.Index(i, j - d, k)] != 7 || v.label[v.Index(i, j + d, k)] != 7)
              depth = d;
          if (depth >= 2 && depth <= 4)
            wall.push_back(v.hu[v.Index(i, j, k)]);
        }
    ASSERT_GT(wall.size(), 100u);
    std::nth_element(wall.begin(), wall.begin() + wall.size() / 2, wall.end());
    const double median = wall[wall.size() / 2];
    EXPECT_GE(median, pv ? 60.0 : 30.0);
    EXPECT_LE(median, pv ? 100.0 : 45.0);
  }
}

namespace {
// Whether any voxel of `a` has a voxel of `b` within `reach` voxels (26-neighbourhood box).
bool
WithinVoxels(const Volume & v, unsigned char a, unsigned char b, int reach, int64_t kMin = 0)
{
  for (int64_t k = kMin; k < v.nz; ++k)
    for (int64_t j = 0; j < v.ny; ++j)
      for (int64_t i = 0; i < v.nx; ++i)
      {
        if (v.label[v.Index(i, j, k)] != a)
          continue;
        for (int64_t dk = -reach; dk <= reach; ++dk)
          for (int64_t dj = -reach; dj <= reach; ++dj)
            for (int64_t di = -reach; di <= reach; ++di)
            {
              const int64_t x = i + di, y = j + dj, z = k + dk;
              if (x >= 0 && x < v.nx && y >= 0 && y < v.ny && z >= 0 && z < v.nz && v.label[v.Index(x, y, z)] == b)
                return true;
            }
      }
  return false;
}
} // namespace

TEST_F(AbdominalPhantomCohort, TouchingNeighboursPancreasSplenicVeinAndIvcInTheLiverGroove)
{
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const Volume & v = s_Contrast[s];
    SCOPED_TRACE("subject " + std::to_string(s + 1));
    EXPECT_TRUE(WithinVoxels(v, 11, 10, 1)); // pancreas against the splenic vein
    // IVC inside the liver's groove: in the upper abdomen most IVC cross-sections border the liver.
    int sections = 0, bordered = 0;
    for (int64_t k = static_cast<int64_t>((160.0 - v.oz) / v.sz); k < static_cast<int64_t>((210.0 - v.oz) / v.sz); ++k)
    {
      bool present = false, touches = false;
      for (int64_t j = 1; j + 1 < v.ny; ++j)
        for (int64_t i = 1; i + 1 < v.nx; ++i)
          if (v.label[v.Index(i, j, k)] == 9)
          {
            present = true;
            touches = touches || v.label[v.Index(i - 1, j, k)] == 6 || v.label[v.Index(i + 1, j, k)] == 6 ||
                      v.label[v.Index(i, j - 1, k)] == 6 || v.label[v.Index(i, j + 1, k)] == 6;
          }
      sections += present;
      bordered += touches;
    }
    ASSERT_GT(sections, 0);
    EXPECT_GE(bordered, sections * 0.75) << bordered << " of " << sections << " IVC sections touch the liver";
  }
}

TEST_F(AbdominalPhantomCohort, SplenicVeinDiameterFromSagittalCrossSections)
{
  // The splenic vein runs from the pancreas neck to the spleen, roughly along x: the
  // equivalent-circle diameter of its cross-sections in planes of constant x (x = 20..60 mm,
  // left of the portal confluence), median over planes. Reference: portal & splenic veins 10-15 mm.
  for (size_t s = 0; s < s_Contrast.size(); ++s)
  {
    const Volume &      v = s_Contrast[s];
    std::vector<double> diameters;
    for (int64_t i = 0; i < v.nx; ++i)
    {
      const double x = v.ox + i * v.sx;
      if (x < 20 || x > 60)
        continue;
      int64_t area = 0;
      for (int64_t k = 0; k < v.nz; ++k)
        for (int64_t j = 0; j < v.ny; ++j)
          area += v.label[v.Index(i, j, k)] == 10;
      if (area > 0)
        diameters.push_back(2.0 * std::sqrt(area * v.sy * v.sz / M_PI));
    }
    ASSERT_GT(diameters.size(), 5u);
    std::nth_element(diameters.begin(), diameters.begin() + diameters.size() / 2, diameters.end());
    const double median = diameters[diameters.size() / 2];
    EXPECT_GE(median, 10.0) << "subject " << s + 1;
    EXPECT_LE(median, 15.0) << "subject " << s + 1;
  }
}
