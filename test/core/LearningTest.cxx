/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// A tiny end-to-end check that the parts learn together: encoder + projection head trained
// with the conditional contrastive loss on augmented views separate two synthetic classes.
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/PairedAugmentation.h"
#include "agcl/PretrainingMode.h"
#include "agcl/ProjectionHead.h"
#include "agcl/ResNetEncoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {
// [n, 2, 32, 32]: class 0 horizontal stripes, class 1 vertical stripes (random period and
// phase, noise); the attention channel marks a random square around the centre.
torch::Tensor
StripePatches(const torch::Tensor & classes, uint64_t seed)
{
  torch::manual_seed(seed);
  const int64_t       n = classes.size(0), size = 32;
  torch::Tensor       patches = torch::zeros({ n, 2, size, size });
  const torch::Tensor coordinate = torch::arange(size, torch::kFloat);
  for (int64_t i = 0; i < n; ++i)
  {
    const double        period = 4.0 + 4.0 * torch::rand({ 1 }).item<double>();
    const double        phase = 2 * M_PI * torch::rand({ 1 }).item<double>();
    const torch::Tensor wave = torch::sin(coordinate * (2 * M_PI / period) + phase);
    const torch::Tensor image = classes[i].item<int64_t>() == 0 ? wave.view({ size, 1 }).expand({ size, size })
                                                                : wave.view({ 1, size }).expand({ size, size });
    patches[i][0] = image + 0.3 * torch::randn({ size, size });
    const int64_t half = 8 + torch::randint(0, 6, { 1 }).item<int64_t>();
    patches[i][1].slice(0, 16 - half, 16 + half).slice(1, 16 - half, 16 + half).fill_(1.0);
  }
  return patches;
}

// Mean cosine similarity within classes minus between classes.
double
SeparationGap(const torch::Tensor & embeddings, const torch::Tensor & classes)
{
  const torch::Tensor similarity = torch::matmul(embeddings, embeddings.t());
  const torch::Tensor same = classes.unsqueeze(1).eq(classes.unsqueeze(0));
  const torch::Tensor offDiagonal = torch::eye(classes.size(0), torch::kBool).logical_not();
  const double        intra = similarity.masked_select(same.logical_and(offDiagonal)).mean().item<double>();
  const double        inter = similarity.masked_select(same.logical_not()).mean().item<double>();
  return intra - inter;
}

struct Model
{
  agcl::ResNetEncoder  encoder{ agcl::ResNetEncoderOptions().depth(18).base_width(8) };
  agcl::ProjectionHead head{ agcl::ProjectionHeadOptions(64).out_features(32) };

  torch::Tensor
  Embed(const torch::Tensor & x)
  {
    return head(encoder->Represent(x));
  }
  std::vector<torch::Tensor>
  Parameters()
  {
    auto p = encoder->parameters();
    auto h = head->parameters();
    p.insert(p.end(), h.begin(), h.end());
    return p;
  }
};

void
Train(Model & model, int steps, uint64_t seed)
{
  agcl::PairedAugmentation         augmentation;
  agcl::ConditionalContrastiveLoss loss;
  torch::optim::Adam               optimizer(model.Parameters(), torch::optim::AdamOptions(1e-3));
  model.encoder->train();
  const torch::Tensor classes = torch::arange(16, torch::kLong) % 2;
  const torch::Tensor modality = torch::zeros({ 16 }, torch::kLong);
  const torch::Tensor labels = agcl::ContrastiveLabels(agcl::PretrainingMode::AGCL, modality, classes, 2);
  for (int step = 0; step < steps; ++step)
  {
    // Each step's randomness derives from (seed, step).
    const torch::Tensor batch = StripePatches(classes, seed * 1000003 + step);
    const torch::Tensor views = augmentation.Forward(batch, seed * 7919 + step);
    optimizer.zero_grad();
    const torch::Tensor value = loss(model.Embed(views), labels);
    value.backward();
    optimizer.step();
  }
}
} // namespace

TEST(Learning, ConditionalContrastiveLossSeparatesTwoClassesIn100Steps)
{
  torch::manual_seed(1);
  Model               model;
  const torch::Tensor classes = torch::arange(32, torch::kLong) % 2;
  const torch::Tensor held = StripePatches(classes, 424242); // not seen in training
  auto                gap = [&] {
    torch::NoGradGuard noGrad;
    model.encoder->eval();
    return SeparationGap(model.Embed(held), classes);
  };
  const double before = gap();
  Train(model, 100, 5);
  const double after = gap();
  RecordProperty("gap_before", std::to_string(before));
  RecordProperty("gap_after", std::to_string(after));
  std::cout << "separation gap (intra - inter cosine): before " << before << ", after " << after << std::endl;
  EXPECT_GT(after, 0.5);
  EXPECT_GT(after, before + 0.3);
}

TEST(Learning, SameSeedGivesBitIdenticalWeightsOnCpu)
{
  auto run = [] {
    torch::manual_seed(3);
    Model model;
    Train(model, 3, 11);
    std::vector<torch::Tensor> weights;
    for (const auto & p : model.Parameters())
      weights.push_back(p.detach().clone());
    for (const auto & b : model.encoder->buffers())
      weights.push_back(b.clone());
    return weights;
  };
  const auto first = run();
  const auto second = run();
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i)
    EXPECT_TRUE(torch::equal(first[i], second[i])) << "tensor " << i;
}
