/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkSegmentationConfusionMatrix.h"

#include <gtest/gtest.h>

#include <random>

namespace {
using Labels = itk::Image<unsigned char, 2>;
using Matrix = itk::SegmentationConfusionMatrix<Labels>;

Labels::Pointer
Make(unsigned width, unsigned height, const std::vector<unsigned char> & values)
{
  auto image = Labels::New();
  image->SetRegions(Labels::SizeType{ { width, height } });
  image->Allocate();
  std::copy(values.begin(), values.end(), image->GetBufferPointer());
  return image;
}

std::string
ErrorOf(Matrix & matrix, const Labels * reference, const Labels * prediction)
{
  try
  {
    matrix.Accumulate(reference, prediction, "pair");
  }
  catch (const itk::ExceptionObject & e)
  {
    return e.GetDescription();
  }
  return "no error";
}
} // namespace

TEST(SegmentationConfusionMatrix, HandCountedPairGivesVocMeanIoU)
{
  // 4 classes, void 255. Reference / prediction, 3 x 3:
  //   0 0 1      0 1 1
  //   1 1 255    1 0 2
  //   2 2 2      2 2 0
  // Counted (void pixel left out): class 0: TP 1, FP 2, FN 1 -> 1/4; class 1: TP 2, FP 1, FN 1 -> 2/4;
  // class 2: TP 2, FP 0, FN 1 -> 2/3 (its prediction at the void pixel is not counted);
  // class 3 in neither -> no IoU. Mean over the 3 present classes = (1/4 + 1/2 + 2/3) / 3.
  Matrix matrix(4, 255);
  matrix.Accumulate(Make(3, 3, { 0, 0, 1, 1, 1, 255, 2, 2, 2 }), Make(3, 3, { 0, 1, 1, 1, 0, 2, 2, 2, 0 }));
  EXPECT_DOUBLE_EQ(*matrix.IoU(0), 0.25);
  EXPECT_DOUBLE_EQ(*matrix.IoU(1), 0.5);
  EXPECT_DOUBLE_EQ(*matrix.IoU(2), 2.0 / 3.0);
  EXPECT_FALSE(matrix.IoU(3).has_value());
  EXPECT_DOUBLE_EQ(*matrix.MeanIoU(), (0.25 + 0.5 + 2.0 / 3.0) / 3.0);
  EXPECT_DOUBLE_EQ(*matrix.PixelAccuracy(), 5.0 / 8.0);
  EXPECT_EQ(matrix.GetIgnoredPixels(), 1u);
}

TEST(SegmentationConfusionMatrix, OneMatrixOverTheSetEqualsABruteForceRecount)
{
  // Random pairs of different sizes with void pixels; per class, intersection and union are
  // recounted pixel by pixel over all pairs (not from the matrix), in double precision.
  std::mt19937                       rng(7);
  const unsigned                     classes = 21;
  std::uniform_int_distribution<int> label(0, classes - 1), coin(0, 9);
  Matrix                             matrix(classes, 255);
  std::vector<double>                intersection(classes, 0.0), unionCount(classes, 0.0);
  double                             correct = 0, counted = 0;
  for (unsigned pair = 0; pair < 5; ++pair)
  {
    const unsigned             w = 7 + 3 * pair, h = 5 + pair;
    std::vector<unsigned char> ref(w * h), pred(w * h);
    for (size_t v = 0; v < ref.size(); ++v)
    {
      // Few classes per image, most pixels right, some void, as in a segmentation.
      ref[v] = coin(rng) == 0 ? 255 : static_cast<unsigned char>((label(rng) % 4) * (pair + 1) % classes);
      pred[v] = ref[v] != 255 && coin(rng) < 7 ? ref[v] : static_cast<unsigned char>(label(rng) % 6);
    }
    matrix.Accumulate(Make(w, h, ref), Make(w, h, pred));
    for (size_t v = 0; v < ref.size(); ++v)
    {
      if (ref[v] == 255)
        continue;
      counted += 1;
      correct += ref[v] == pred[v];
      for (unsigned c = 0; c < classes; ++c)
      {
        intersection[c] += ref[v] == c && pred[v] == c;
        unionCount[c] += ref[v] == c || pred[v] == c;
      }
    }
  }
  double   sum = 0;
  unsigned present = 0;
  for (unsigned c = 0; c < classes; ++c)
  {
    if (unionCount[c] == 0)
    {
      EXPECT_FALSE(matrix.IoU(c).has_value()) << c;
      continue;
    }
    ASSERT_TRUE(matrix.IoU(c).has_value()) << c;
    EXPECT_NEAR(*matrix.IoU(c), intersection[c] / unionCount[c], 1e-15) << c;
    sum += intersection[c] / unionCount[c];
    ++present;
  }
  EXPECT_GT(present, 5u);
  EXPECT_LT(present, classes); // some classes absent from both: left out of the mean
  EXPECT_NEAR(*matrix.MeanIoU(), sum / present, 1e-15);
  EXPECT_NEAR(*matrix.PixelAccuracy(), correct / counted, 1e-15);
  EXPECT_EQ(matrix.GetNumberOfImages(), 5u);
}

TEST(SegmentationConfusionMatrix, BadValuesAndShapesAreRefusedAndAddNothing)
{
  Matrix matrix(3, 255);
  EXPECT_FALSE(matrix.MeanIoU().has_value());
  const auto ok = Make(2, 2, { 0, 1, 2, 255 });
  // A reference value that is neither a class nor void.
  std::string error = ErrorOf(matrix, Make(2, 2, { 0, 1, 7, 0 }), Make(2, 2, { 0, 1, 2, 0 }));
  EXPECT_NE(error.find("'pair': the reference has the value 7 at pixel [0, 1]; expected a class 0..2 or the ignore "
                       "label 255"),
            std::string::npos)
    << error;
  // A prediction of void (or any non-class) is refused: a segmentation predicts classes.
  error = ErrorOf(matrix, ok, Make(2, 2, { 0, 1, 2, 255 }));
  EXPECT_NE(error.find("the prediction has the value 255 at pixel [1, 1]; expected a class 0..2"), std::string::npos)
    << error;
  error = ErrorOf(matrix, ok, Make(3, 2, { 0, 0, 0, 0, 0, 0 }));
  EXPECT_NE(error.find("the prediction's size [3, 2] differs from the reference's [2, 2]"), std::string::npos) << error;
  auto         moved = Make(2, 2, { 0, 1, 2, 0 });
  const double spacing[2] = { 1.0, 2.0 };
  moved->SetSpacing(spacing);
  error = ErrorOf(matrix, ok, moved);
  EXPECT_NE(error.find("spacing or origin differs"), std::string::npos) << error;
  EXPECT_EQ(matrix.GetNumberOfImages(), 0u);
  EXPECT_EQ(matrix.GetIgnoredPixels(), 0u);
  EXPECT_EQ(matrix.UnionPixels(0) + matrix.UnionPixels(1) + matrix.UnionPixels(2), 0u);
  EXPECT_THROW(Matrix(3, 2), itk::ExceptionObject); // the ignore label is a class
  EXPECT_THROW(Matrix(0, 255), itk::ExceptionObject);
  EXPECT_THROW(Matrix(257, 255), itk::ExceptionObject);
}
