/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ASPPDecoder.h"
#include "agcl/CoarseSegmentationNet.h"
#include "agcl/Device.h"
#include "agcl/ProjectionHead.h"
#include "agcl/ResNetEncoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

namespace {
using Shape = std::vector<int64_t>;

template <typename F>
void
ExpectInvalidArgument(F f, const std::string & text)
{
  try
  {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
  }
  catch (const std::invalid_argument & e)
  {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}
} // namespace

TEST(ResNetEncoder, FeatureShapesForEveryDepthAndWidth)
{
  torch::NoGradGuard noGrad;
  for (int64_t depth : { 18, 34, 50, 101 })
  {
    for (int64_t width : { 8, 16 })
    {
      agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(depth).base_width(width));
      encoder->eval();
      const int64_t expansion = depth >= 50 ? 4 : 1;
      const auto    features = encoder(torch::randn({ 2, 2, 64, 48 }));
      EXPECT_EQ(features.low_level.sizes().vec(), (Shape{ 2, width * expansion, 16, 12 })) << depth << "/" << width;
      EXPECT_EQ(features.high_level.sizes().vec(), (Shape{ 2, 8 * width * expansion, 4, 3 })) << depth << "/" << width;
      EXPECT_EQ(encoder->LowLevelChannels(), width * expansion);
      EXPECT_EQ(encoder->HighLevelChannels(), 8 * width * expansion);
    }
  }
}

TEST(ResNetEncoder, PaperSizedRepresentationIs2048UnitVectors)
{
  torch::NoGradGuard  noGrad;
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(50).base_width(64));
  encoder->eval();
  const torch::Tensor z = encoder->Represent(torch::randn({ 2, 2, 32, 32 }));
  ASSERT_EQ(z.sizes().vec(), (Shape{ 2, 2048 }));
  EXPECT_TRUE(torch::allclose(z.norm(2, 1), torch::ones({ 2 }), 1e-5, 1e-6));
}

TEST(ResNetEncoder, OutputStrideEightAndThirtyTwo)
{
  torch::NoGradGuard  noGrad;
  agcl::ResNetEncoder os8(agcl::ResNetEncoderOptions().depth(18).base_width(8).output_stride(8));
  agcl::ResNetEncoder os32(agcl::ResNetEncoderOptions().depth(18).base_width(8).output_stride(32));
  EXPECT_EQ(os8(torch::randn({ 1, 2, 64, 64 })).high_level.sizes().vec(), (Shape{ 1, 64, 8, 8 }));
  EXPECT_EQ(os32(torch::randn({ 1, 2, 64, 64 })).high_level.sizes().vec(), (Shape{ 1, 64, 2, 2 }));
}

TEST(ResNetEncoder, BadSizesAndOptionsAreRejected)
{
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  ExpectInvalidArgument([&] { encoder(torch::randn({ 1, 2, 60, 64 })); }, "multiples of 16");
  ExpectInvalidArgument([&] { encoder(torch::randn({ 1, 3, 64, 64 })); }, "[N, 2, H, W]");
  ExpectInvalidArgument([&] { encoder(torch::randn({ 2, 64, 64 })); }, "input has shape");
  ExpectInvalidArgument([] { agcl::ResNetEncoder(agcl::ResNetEncoderOptions().depth(20)); }, "depth 20");
  ExpectInvalidArgument([] { agcl::ResNetEncoder(agcl::ResNetEncoderOptions().output_stride(4)); }, "output_stride");
}

TEST(ResNetEncoder, AddingAnInputChannelKeepsTheTrainedFunction)
{
  torch::manual_seed(11);
  agcl::ResNetEncoder imageOnly(agcl::ResNetEncoderOptions().depth(18).base_width(8).in_channels(1));
  // Give BatchNorm non-trivial running statistics, as a trained encoder has.
  imageOnly->train();
  {
    torch::NoGradGuard noGrad;
    for (int i = 0; i < 3; ++i)
      imageOnly(torch::randn({ 4, 1, 32, 32 }) * 3 + 1);
  }
  imageOnly->eval();
  std::vector<std::pair<std::string, torch::Tensor>> checkpoint;
  for (const auto & p : imageOnly->named_parameters())
    checkpoint.emplace_back(p.key(), p.value().detach().clone());
  for (const auto & b : imageOnly->named_buffers())
    checkpoint.emplace_back(b.key(), b.value().clone());

  agcl::ResNetEncoder withAttention(agcl::ResNetEncoderOptions().depth(18).base_width(8).in_channels(2));
  withAttention->LoadParameters(checkpoint);
  withAttention->eval();
  const torch::Tensor oldKernel = imageOnly->named_parameters()["conv1.weight"];
  const torch::Tensor newKernel = withAttention->named_parameters()["conv1.weight"];
  ASSERT_EQ(newKernel.sizes().vec(), (Shape{ 8, 2, 7, 7 }));
  EXPECT_TRUE(torch::equal(newKernel.slice(1, 0, 1), oldKernel));
  EXPECT_EQ(newKernel.slice(1, 1, 2).abs().max().item<float>(), 0.0f);

  torch::NoGradGuard  noGrad;
  const torch::Tensor image = torch::randn({ 3, 1, 32, 32 });
  const torch::Tensor attention = (torch::rand({ 3, 1, 32, 32 }) > 0.5).to(torch::kFloat);
  const auto          before = imageOnly(image);
  const auto          after = withAttention(torch::cat({ image, attention }, 1));
  EXPECT_TRUE(torch::allclose(before.high_level, after.high_level, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(before.low_level, after.low_level, 1e-5, 1e-6));
}

TEST(ResNetEncoder, LoadParametersRejectsAnotherArchitecture)
{
  agcl::ResNetEncoder                                small(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ResNetEncoder                                other(agcl::ResNetEncoderOptions().depth(18).base_width(16));
  std::vector<std::pair<std::string, torch::Tensor>> checkpoint;
  for (const auto & p : other->named_parameters())
    checkpoint.emplace_back(p.key(), p.value().detach());
  for (const auto & b : other->named_buffers())
    checkpoint.emplace_back(b.key(), b.value());
  ExpectInvalidArgument([&] { small->LoadParameters(checkpoint); }, "has shape");
  checkpoint.resize(3);
  agcl::ResNetEncoder same(agcl::ResNetEncoderOptions().depth(18).base_width(16));
  ExpectInvalidArgument([&] { same->LoadParameters(checkpoint); }, "has no entry");
}

TEST(ResNetEncoder, FrozenEncoderKeepsBatchNormInEvalModeAndHasNoGradients)
{
  torch::manual_seed(12);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   decoder(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(16));
  encoder->SetFrozen(true);
  encoder->train(); // what a trainer calls on every module at the start of an epoch
  decoder->train();
  EXPECT_FALSE(encoder->is_training());
  const torch::Tensor runningMean = encoder->named_buffers()["bn1.running_mean"].clone();
  const auto          features = encoder(torch::randn({ 2, 2, 32, 32 }) * 5 + 3);
  const torch::Tensor logits = decoder->forward(features.low_level, features.high_level, { 32 });
  logits.sum().backward();
  EXPECT_TRUE(torch::equal(runningMean, encoder->named_buffers()["bn1.running_mean"]));
  for (const auto & p : encoder->parameters())
  {
    EXPECT_FALSE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());
  }
  bool decoderLearns = false;
  for (const auto & p : decoder->parameters())
    decoderLearns = decoderLearns || (p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  EXPECT_TRUE(decoderLearns);
  encoder->SetFrozen(false);
  encoder->train();
  EXPECT_TRUE(encoder->is_training());
}

TEST(ResNetEncoder, BatchNormStatisticsReEstimatedFromTheBatchesAlone)
{
  torch::manual_seed(13);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  encoder->SetFrozen(true);
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 3; ++i) // three equal batches with different means and scales
    batches.push_back(torch::randn({ 4, 2, 32, 32 }) * (1.0 + i) + 2.0 * i);
  std::map<std::string, torch::Tensor> parametersBefore;
  for (const auto & p : encoder->named_parameters())
    parametersBefore[p.key()] = p.value().clone();
  const torch::Tensor layer4Before = encoder->named_buffers()["layer4.1.bn2.running_var"].clone();

  encoder->EstimateBatchNormStatistics(batches);

  // The stem's statistics against a naive recount in double precision: its convolution (7 x 7,
  // stride 2, padding 3, no bias) on each batch; the average over batches of each batch's
  // channel mean and unbiased variance.
  const torch::Tensor weight = encoder->named_parameters()["conv1.weight"].to(torch::kDouble);
  torch::Tensor       mean = torch::zeros({ 8 }, torch::kDouble), variance = torch::zeros({ 8 }, torch::kDouble);
  for (const auto & batch : batches)
  {
    const torch::Tensor y = torch::conv2d(batch.to(torch::kDouble), weight, {}, 2, 3);
    mean += y.mean({ 0, 2, 3 }) / 3.0;
    variance += y.transpose(0, 1).reshape({ 8, -1 }).var(1, /*unbiased=*/true) / 3.0;
  }
  const auto buffers = encoder->named_buffers();
  EXPECT_TRUE(torch::allclose(buffers["bn1.running_mean"].to(torch::kDouble), mean, 1e-5, 1e-5))
    << buffers["bn1.running_mean"] << mean;
  EXPECT_TRUE(torch::allclose(buffers["bn1.running_var"].to(torch::kDouble), variance, 1e-4, 1e-5))
    << buffers["bn1.running_var"] << variance;
  EXPECT_FALSE(torch::equal(layer4Before, buffers["layer4.1.bn2.running_var"])); // every layer, not only the stem
  for (const auto & p : encoder->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), parametersBefore.at(p.key()))) << p.key();
  // Still frozen, in eval mode, and its BatchNorm momentum back: a frozen forward changes nothing.
  EXPECT_TRUE(encoder->IsFrozen());
  EXPECT_FALSE(encoder->is_training());
  const torch::Tensor after = buffers["bn1.running_mean"].clone();
  encoder->forward(batches[0]);
  EXPECT_TRUE(torch::equal(after, encoder->named_buffers()["bn1.running_mean"]));
  // Unfrozen and training, a batch moves the statistics by momentum 0.1 again, not by 1/(n+1).
  encoder->SetFrozen(false);
  encoder->train();
  const torch::Tensor batchMean = torch::conv2d(batches[0].to(torch::kDouble), weight, {}, 2, 3).mean({ 0, 2, 3 });
  encoder->forward(batches[0]);
  EXPECT_TRUE(torch::allclose(encoder->named_buffers()["bn1.running_mean"].to(torch::kDouble),
                              0.9 * after.to(torch::kDouble) + 0.1 * batchMean,
                              1e-5,
                              1e-5));
  ExpectInvalidArgument([&] { encoder->EstimateBatchNormStatistics({}); }, "no batches");
}

TEST(ProjectionHead, MapsTheRepresentationTo256UnitVectors)
{
  agcl::ProjectionHead head(agcl::ProjectionHeadOptions(128));
  const torch::Tensor  e = head(torch::randn({ 5, 128 }));
  ASSERT_EQ(e.sizes().vec(), (Shape{ 5, 256 }));
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({ 5 }), 1e-5, 1e-6));
  EXPECT_EQ(head->named_parameters()["hidden.weight"].sizes().vec(), (Shape{ 128, 128 }));
  ExpectInvalidArgument([&] { head(torch::randn({ 5, 64 })); }, "[N, 128]");
}

TEST(ASPPDecoder, LogitsAtPatchSizeAndOrganProbability)
{
  torch::NoGradGuard  noGrad;
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   decoder(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(32));
  encoder->eval();
  decoder->eval();
  for (const Shape & size : { Shape{ 64, 64 }, Shape{ 96, 48 } })
  {
    const auto          f = encoder(torch::randn({ 3, 2, size[0], size[1] }));
    const torch::Tensor logits = decoder->forward(f.low_level, f.high_level, size);
    EXPECT_EQ(logits.sizes().vec(), (Shape{ 3, 2, size[0], size[1] }));
    const torch::Tensor p = agcl::ASPPDecoderImpl::OrganProbability(logits);
    EXPECT_EQ(p.sizes().vec(), (Shape{ 3, 1, size[0], size[1] }));
    EXPECT_GE(p.min().item<float>(), 0.0f);
    EXPECT_LE(p.max().item<float>(), 1.0f);
  }
  // Batch of one in training mode (image pooling without BatchNorm).
  decoder->train();
  const auto f = encoder(torch::randn({ 1, 2, 32, 32 }));
  EXPECT_EQ(decoder->forward(f.low_level, f.high_level, { 32 }).sizes().vec(), (Shape{ 1, 2, 32, 32 }));
}

TEST(ASPPDecoder, MismatchedSizesAreRejected)
{
  agcl::ASPPDecoder decoder(agcl::ASPPDecoderOptions(64, 8).channels(16));
  ExpectInvalidArgument(
    [&] {
      decoder->forward(torch::randn({ 1, 8, 16, 16 }), torch::randn({ 1, 64, 4, 4 }), { 60 });
    },
    "multiples of 16");
  ExpectInvalidArgument(
    [&] {
      decoder->forward(torch::randn({ 1, 8, 15, 16 }), torch::randn({ 1, 64, 4, 4 }), { 64 });
    },
    "low_level has shape");
  ExpectInvalidArgument(
    [&] {
      decoder->forward(torch::randn({ 1, 8, 16, 16 }), torch::randn({ 1, 32, 4, 4 }), { 64 });
    },
    "high_level has shape");
}

namespace {
// Relative residual of the least-squares fit of `image` [P, P] by bilinear (align_corners false)
// upsampling of any (P/s) x (P/s) map, in double precision: ~0 when the image is such an upsampling.
double
ResidualOutsideUpsamplings(const torch::Tensor & image, int64_t s)
{
  const int64_t       P = image.size(0), q = P / s;
  const torch::Tensor basis = torch::eye(q * q, torch::kDouble).reshape({ q * q, 1, q, q });
  const torch::Tensor up = torch::nn::functional::interpolate(basis,
                                                              torch::nn::functional::InterpolateFuncOptions()
                                                                .size(std::vector<int64_t>{ P, P })
                                                                .mode(torch::kBilinear)
                                                                .align_corners(false));
  const torch::Tensor A = up.reshape({ q * q, P * P }).t(); // [P^2, q^2]
  const torch::Tensor b = image.to(torch::kDouble).reshape({ P * P, 1 });
  const torch::Tensor x = torch::linalg_pinv(A).matmul(b);
  return (A.matmul(x) - b).norm().item<double>() / b.norm().item<double>();
}
} // namespace

TEST(ASPPDecoder, AStemStageGivesLogitsAtStride2)
{
  torch::manual_seed(21);
  torch::NoGradGuard  noGrad;
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   plain(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(16));
  agcl::ASPPDecoder fine(agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels())
                           .channels(16)
                           .stem_channels(encoder->StemChannels()));
  EXPECT_FALSE(plain->UsesStem());
  EXPECT_TRUE(fine->UsesStem());
  encoder->eval();
  plain->eval();
  fine->eval();
  const auto f = encoder(torch::randn({ 2, 2, 32, 32 }));
  EXPECT_EQ(f.stem.sizes().vec(), (Shape{ 2, 8, 16, 16 }));
  const torch::Tensor coarse = plain->forward(f.low_level, f.high_level, { 32 });
  const torch::Tensor logits = fine->forward(f.low_level, f.high_level, { 32 }, f.stem);
  ASSERT_EQ(logits.sizes().vec(), (Shape{ 2, 2, 32, 32 }));
  // Each logit map is a bilinear x4 upsampling of a 8 x 8 map without the stem stage and a x2
  // upsampling of a 16 x 16 map with it, and not a x4 one (checked by least squares in double).
  for (int64_t n = 0; n < 2; ++n)
  {
    EXPECT_LT(ResidualOutsideUpsamplings(coarse[n][1], 4), 1e-5);
    EXPECT_LT(ResidualOutsideUpsamplings(logits[n][1], 2), 1e-5);
    EXPECT_GT(ResidualOutsideUpsamplings(logits[n][1], 4), 1e-2);
  }
  // The stem features reach the logits.
  EXPECT_FALSE(torch::allclose(logits, fine->forward(f.low_level, f.high_level, { 32 }, f.stem + 1.0)));
  // A stride-4 decoder ignores a stem it is given.
  EXPECT_TRUE(torch::equal(coarse, plain->forward(f.low_level, f.high_level, { 32 }, f.stem)));
  ExpectInvalidArgument([&] { fine->forward(f.low_level, f.high_level, { 32 }); }, "stem");
  ExpectInvalidArgument([&] { fine->forward(f.low_level, f.high_level, { 32 }, f.stem.slice(2, 0, 8)); },
                        "stem has shape");
}

TEST(CoarseSegmentationNet, LogitsForEveryClassAtInputSize)
{
  torch::NoGradGuard          noGrad;
  agcl::CoarseSegmentationNet net(agcl::CoarseSegmentationNetOptions().base_channels(4).levels(3));
  const torch::Tensor         logits = net(torch::randn({ 1, 1, 8, 16, 12 }));
  EXPECT_EQ(logits.sizes().vec(), (Shape{ 1, 13, 8, 16, 12 }));
  ExpectInvalidArgument([&] { net(torch::randn({ 1, 1, 8, 16, 10 })); }, "multiples of 4");
}

TEST(Networks, SameSeedGivesBitIdenticalModelsAndOutputs)
{
  auto run = [] {
    torch::manual_seed(42);
    agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
    agcl::ASPPDecoder   decoder(
      agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(16));
    const torch::Tensor x = torch::randn({ 2, 2, 32, 32 });
    const auto          f = encoder(x);
    return decoder->forward(f.low_level, f.high_level, { 32 }).detach();
  };
  EXPECT_TRUE(torch::equal(run(), run()));
}

TEST(Networks, RunOnCudaThroughTheSameCode)
{
  if (!agcl::CudaAvailable())
  {
    GTEST_SKIP() << "no CUDA device";
  }
  const torch::Device device("cuda");
  torch::manual_seed(13);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(50).base_width(16));
  agcl::ASPPDecoder   decoder(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(32));
  encoder->eval();
  decoder->eval();
  const torch::Tensor x = torch::randn({ 2, 2, 64, 64 });
  torch::NoGradGuard  noGrad;
  const auto          cpuFeatures = encoder(x);
  const torch::Tensor cpu = decoder->forward(cpuFeatures.low_level, cpuFeatures.high_level, { 64 });
  encoder->to(device);
  decoder->to(device);
  const auto          gpuFeatures = encoder(x.to(device));
  const torch::Tensor gpu = decoder->forward(gpuFeatures.low_level, gpuFeatures.high_level, { 64 });
  EXPECT_TRUE(gpu.is_cuda());
  // cuDNN may use TF32 for float32 convolutions (PyTorch's default on Ampere and later): compare
  // with a relative L2 tolerance that TF32 through 50 layers meets, not element-wise at 1e-3.
  const double relative = ((gpu.cpu() - cpu).norm() / cpu.norm()).item<double>();
  std::cout << "ResNet-50 w16 + decoder, CUDA vs CPU relative L2 difference: " << relative << std::endl;
  EXPECT_LT(relative, 1e-2);
  agcl::CoarseSegmentationNet net(agcl::CoarseSegmentationNetOptions().base_channels(4).levels(3));
  net->to(device);
  EXPECT_EQ(net(torch::randn({ 1, 1, 8, 16, 16 }, device)).device().type(), torch::kCUDA);
}

TEST(CoarseSegmentationNet, CoordinateChannelsAreTheInPlanePositionsFedAsInputs)
{
  // A network with coordinates = one without, given x and y positions as two more input
  // channels built by hand, with the same weights.
  torch::manual_seed(3);
  agcl::CoarseSegmentationNet withCoordinates(
    agcl::CoarseSegmentationNetOptions().classes(5).base_channels(4).levels(2).coordinates(true));
  agcl::CoarseSegmentationNet plain(
    agcl::CoarseSegmentationNetOptions().in_channels(3).classes(5).base_channels(4).levels(2));
  {
    torch::NoGradGuard noGrad;
    auto               a = withCoordinates->named_parameters(), b = plain->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto & item : a)
      b[item.key()].copy_(item.value());
    EXPECT_EQ(withCoordinates->named_parameters()["down.0.0.weight"].size(1), 3);
  }
  withCoordinates->eval();
  plain->eval();
  const int64_t D = 4, H = 6, W = 8;
  const auto    volume = torch::rand({ 2, 1, D, H, W });
  auto          positions = torch::empty({ 2, 2, D, H, W });
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t z = 0; z < D; ++z)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
        {
          positions[n][0][z][y][x] = (2.0 * x + 1.0) / W - 1.0;
          positions[n][1][z][y][x] = (2.0 * y + 1.0) / H - 1.0;
        }
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(torch::allclose(withCoordinates->forward(volume),
                              plain->forward(torch::cat({ volume, positions }, 1)),
                              1e-4,
                              2e-5)); // float summation order differs
  // The position matters: the mirrored volume does not give the mirrored logits.
  EXPECT_FALSE(
    torch::allclose(withCoordinates->forward(volume.flip(4)).flip(4), withCoordinates->forward(volume), 1e-3, 1e-4));
}

TEST(CoarseSegmentationNet, PlanarNetworkIsTheTwoDimensionalUNetOnEachSlice)
{
  // The planar network against the same U-Net written with 2D operations (conv2d,
  // instance_norm, max_pool2d, bilinear upsampling) on each slice alone, with its weights
  // (depth-1 kernels squeezed), in double precision; D needs no size multiple.
  torch::manual_seed(11);
  const auto options =
    agcl::CoarseSegmentationNetOptions().in_channels(3).classes(4).base_channels(4).levels(3).planar(true);
  agcl::CoarseSegmentationNet net(options);
  net->to(torch::kFloat64);
  net->eval();
  auto params = net->named_parameters();
  EXPECT_EQ(params["down.0.0.weight"].sizes().vec(), (Shape{ 4, 3, 1, 3, 3 }));
  auto block = [&](const std::string & name, torch::Tensor x) {
    for (int conv : { 0, 3 })
    {
      const std::string c = name + "." + std::to_string(conv), norm = name + "." + std::to_string(conv + 1);
      x = torch::conv2d(x, params[c + ".weight"].squeeze(2), {}, 1, 1);
      x = torch::instance_norm(x, params[norm + ".weight"], params[norm + ".bias"], {}, {}, true, 0.1, 1e-5, false);
      x = torch::relu(x);
    }
    return x;
  };
  auto twoD = [&](const torch::Tensor & slice) {
    std::vector<torch::Tensor> skips;
    torch::Tensor              x = slice;
    for (int level = 0; level < 3; ++level)
    {
      if (level > 0)
        x = torch::max_pool2d(x, { 2, 2 });
      x = block("down." + std::to_string(level), x);
      skips.push_back(x);
    }
    for (int i = 0; i < 2; ++i)
    {
      const auto & skip = skips[skips.size() - 2 - i];
      x = torch::nn::functional::interpolate(x,
                                             torch::nn::functional::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{ skip.size(2), skip.size(3) })
                                               .mode(torch::kBilinear)
                                               .align_corners(false));
      x = block("up." + std::to_string(i), torch::cat({ x, skip }, 1));
    }
    return torch::conv2d(x, params["classifier.weight"].squeeze(2), params["classifier.bias"]);
  };
  torch::NoGradGuard  noGrad;
  const auto          volume = torch::rand({ 2, 3, 3, 8, 12 }, torch::kFloat64); // D = 3: not a multiple of 4
  const torch::Tensor logits = net(volume);
  ASSERT_EQ(logits.sizes().vec(), (Shape{ 2, 4, 3, 8, 12 }));
  for (int64_t z = 0; z < 3; ++z)
  {
    const torch::Tensor expected = twoD(volume.select(2, z));
    EXPECT_LT((logits.select(2, z) - expected).abs().max().item<double>(), 1e-12) << "slice " << z;
  }
  // A 2D image is one slice.
  EXPECT_EQ(net(volume.slice(2, 0, 1)).sizes().vec(), (Shape{ 2, 4, 1, 8, 12 }));
  ExpectInvalidArgument([&] { net(volume.slice(4, 0, 10)); }, "with H and W multiples of 4");
}
