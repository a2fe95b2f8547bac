/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AGCLModel.h"
#include "agcl/Device.h"
#include "common/TinyModelConfig.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

namespace {
namespace fs = std::filesystem;

template <typename F>
void
ExpectConfigError(F f, const std::string & text)
{
  try
  {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
  }
  catch (const agcl::ModelBundleError & e)
  {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

agcl::ModelConfig
Tiny()
{
  return agcl::test::TinyModelConfig();
}
} // namespace

TEST(ModelConfig, JsonRoundTripKeepsEverySetting)
{
  agcl::ModelConfig config = Tiny();
  config.modalities = { "ct" };
  config.patch_size = 96;
  config.patch_spacing_mm = 0.8;
  config.window_low = -100;
  config.window_high = 200;
  config.margin_mm = 7.5;
  config.overlap = 0.5;
  config.threshold = 0.4;
  config.coarse_weight = 0.6;
  config.coarse_vote_scaled_to_peak = true;
  config.encoder_depth = 34;
  config.output_stride = 8;
  config.decoder_rates = { 1, 2, 3 };
  config.decoder_output_stride = 2;
  config.coarse_spacing_mm = { 3.0, 3.5, 5.0 };
  config.coarse_window_low = -500;
  config.coarse_window_high = 500;
  config.provenance = { { "data", "phantom" } };
  const agcl::ModelConfig back = agcl::ModelConfig::FromJson(nlohmann::json::parse(config.ToJson().dump()));
  EXPECT_EQ(back.ToJson(), config.ToJson());
  ASSERT_EQ(back.organs.size(), 4u);
  EXPECT_EQ(back.organs[2].name, "liver");
  EXPECT_EQ(back.organs[2].label, 6);
  EXPECT_EQ(back.OrganIndex(8), 3);
  EXPECT_EQ(back.OrganIndex(3), -1);
  EXPECT_EQ(back.patch_size, 96);
  EXPECT_DOUBLE_EQ(back.coarse_spacing_mm[2], 5.0);
  EXPECT_DOUBLE_EQ(back.window_high, 200.0);
  EXPECT_EQ(back.decoder_output_stride, 2);
  EXPECT_TRUE(back.coarse_vote_scaled_to_peak);
  EXPECT_EQ(back.provenance["data"], "phantom");
}

TEST(ModelConfig, TwoDimensionalColourModelRoundTripsAndBuildsItsNetworks)
{
  // A 2D RGB model (PASCAL VOC, issue 19): planar coarse network on 3 channels, encoder on 3 + 1
  // attention channel, ImageNet-like per-channel statistics.
  agcl::ModelConfig config = Tiny();
  config.image_dimensions = 2;
  config.image_channels = 3;
  config.channel_mean = { 123.7, 116.3, 103.5 };
  config.channel_std = { 58.4, 57.1, 57.4 };
  const nlohmann::json json = config.ToJson();
  EXPECT_EQ(json["image"]["dimensions"], 2);
  EXPECT_EQ(json["image"]["channels"], 3);
  const agcl::ModelConfig back = agcl::ModelConfig::FromJson(nlohmann::json::parse(json.dump()));
  EXPECT_EQ(back.ToJson(), json);
  EXPECT_EQ(back.channel_std, config.channel_std);
  agcl::AGCLModel model(back);
  EXPECT_TRUE(model.Coarse()->options().planar());
  EXPECT_EQ(model.Coarse()->options().in_channels(), 3);
  EXPECT_EQ(model.Encoder()->named_parameters()["conv1.weight"].size(1), 4);
  // The CT default: 3D, one channel, no "mean"/"std" keys written.
  EXPECT_EQ(Tiny().ToJson()["image"], (nlohmann::json{ { "dimensions", 3 }, { "channels", 1 } }));
  EXPECT_EQ(agcl::AGCLModel(Tiny()).Encoder()->named_parameters()["conv1.weight"].size(1), 2);
  EXPECT_FALSE(agcl::AGCLModel(Tiny()).Coarse()->options().planar());
  // Bad values name the key.
  auto with = [&](nlohmann::json image) {
    nlohmann::json j = json;
    j["image"] = std::move(image);
    return j;
  };
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with({ { "dimensions", 4 } }));
    },
    "'image.dimensions' = 4: expected 2 (pictures) or 3 (volumes)");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with({ { "dimensions", 3 }, { "channels", 3 } }));
    },
    "'image.channels' = 3: expected 1..16 for 2D images, 1 for volumes (CT)");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(
        with({ { "dimensions", 2 }, { "channels", 3 }, { "mean", { 1, 2 } }, { "std", { 1, 1 } } }));
    },
    "one finite mean and one positive std per channel");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(
        with({ { "dimensions", 2 }, { "channels", 3 }, { "mean", { 1, 2, 3 } }, { "std", { 1, 0, 1 } } }));
    },
    "one finite mean and one positive std per channel");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with({ { "channels", "rgb" } }));
    },
    "'channels' = \"rgb\": expected an integer");
}

TEST(ModelConfig, MissingKeysKeepDefaults)
{
  const agcl::ModelConfig config = agcl::ModelConfig::FromJson(nlohmann::json::object());
  EXPECT_EQ(config.organs.size(), 12u);
  EXPECT_EQ(config.organs[5].name, "liver");
  EXPECT_EQ(config.organs[5].label, 6);
  EXPECT_EQ(config.patch_size, 64);
  EXPECT_DOUBLE_EQ(config.window_low, -175.0);
  EXPECT_DOUBLE_EQ(config.window_high, 275.0);
  EXPECT_EQ(config.decoder_output_stride, 4); // models saved before the key: DeepLabv3+'s head
  EXPECT_FALSE(config.coarse_vote_scaled_to_peak);
}

TEST(ModelConfig, BadValuesNameTheKey)
{
  auto with = [](const char * key, nlohmann::json value) {
    nlohmann::json json = Tiny().ToJson();
    json[key] = std::move(value);
    return json;
  };
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("patch_size", 40)); }, "patch_size");
  // An organ's own fusion threshold: a probability; absent = the model's threshold.
  {
    nlohmann::json json = Tiny().ToJson();
    json["organs"][1]["threshold"] = 0.45;
    const agcl::ModelConfig config = agcl::ModelConfig::FromJson(json);
    EXPECT_EQ(config.OrganThreshold(1), 0.45);
    EXPECT_EQ(config.OrganThreshold(0), config.threshold);
    EXPECT_EQ(agcl::ModelConfig::FromJson(config.ToJson()).OrganThreshold(1), 0.45);
    EXPECT_FALSE(config.ToJson()["organs"][0].contains("threshold"));
    json["organs"][1]["threshold"] = 1.5;
    ExpectConfigError([&] { agcl::ModelConfig::FromJson(json); },
                      "'organs[1].threshold' = 1.5: expected a probability");
    json["organs"][1]["threshold"] = "high";
    ExpectConfigError([&] { agcl::ModelConfig::FromJson(json); },
                      "'organs[1].threshold' = \"high\": expected a number");
  }
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("patch_size", "64")); }, "patch_size");
  // Integers only where integers are meant: 64.5 was truncated to 64 silently, and 1.6e22 (a
  // number too large for int64, found by the fuzz target) was converted with undefined behaviour.
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("patch_size", 64.5)); },
                    "'patch_size' = 64.5: expected an integer");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("encoder", { { "output_stride", 1.6e22 } }));
    },
    "'output_stride' = 1.6e+22: expected an integer");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("encoder", { { "width", uint64_t{ 18446744073709551615u } } }));
    },
    "'width' = 18446744073709551615: expected an integer");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("decoder", { { "rates", { 6, 12.5, 18 } } }));
    },
    "'rates' = [6,12.5,18]: expected an array of integers");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("decoder", { { "output_stride", 8 } }));
    },
    "decoder.output_stride");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("window", { 300, 100 })); }, "window");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("threshold", 1.5)); }, "threshold");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("coarse_weight", -0.1)); }, "coarse_weight");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("coarse_weight", "high")); }, "coarse_weight");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("coarse_vote_scaled_to_peak", 1)); },
                    "coarse_vote_scaled_to_peak");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("modalities", nlohmann::json::array())); }, "modalities");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(
        with("organs", { { { "name", "a" }, { "label", 1 } }, { { "name", "b" }, { "label", 1 } } }));
    },
    "organs");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("organs", { "spleen" })); }, "organs");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("encoder", { { "depth", 19 } })); }, "encoder.depth");
  // The encoder builds only multiples of 4: refused here, not later by the network's own check.
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("encoder", { { "width", 9 } })); }, "encoder.width");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("coarse", { { "spacing_mm", { 4, 0, 4 } } }));
    },
    "coarse.spacing_mm");
  ExpectConfigError([] { agcl::ModelConfig::FromJson(nlohmann::json::array()); }, "config");
  // Physical ranges that keep the tiling, fusion and resampling loops bounded.
  for (const double spacing : { 1e-300, 0.005, 101.0 })
    ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("patch_spacing_mm", spacing)); }, "patch_spacing_mm");
  EXPECT_NO_THROW(agcl::ModelConfig::FromJson(with("patch_spacing_mm", 0.0))); // the image's spacing
  EXPECT_NO_THROW(agcl::ModelConfig::FromJson(with("patch_spacing_mm", 0.01)));
  for (const double margin : { -1.0, 500.5, 1e300 })
    ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("margin_mm", margin)); }, "margin_mm");
  EXPECT_NO_THROW(agcl::ModelConfig::FromJson(with("margin_mm", 500.0)));
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("coarse", { { "spacing_mm", { 8, 8, 1e-9 } } }));
    },
    "coarse.spacing_mm");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("coarse", { { "base_channels", 100000 } })); }, "coarse");
  ExpectConfigError(
    [&] {
      agcl::ModelConfig::FromJson(with("coarse", { { "window_slices", 1 << 20 } }));
    },
    "coarse.window_slices");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("decoder", { { "channels", 1 << 20 } })); }, "decoder");
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(with("decoder", { { "rates", { 6, 0, 18 } } })); }, "decoder");
}

TEST(AGCLModel, SaveLoadGivesIdenticalNetworks)
{
  torch::manual_seed(3);
  agcl::AGCLModel model(Tiny());
  const fs::path  path = fs::temp_directory_path() / ("agcl-model-test-" + std::to_string(::getpid()) + ".agcl");
  model.Save(path.string());
  agcl::AGCLModel loaded = agcl::AGCLModel::Load(path.string());
  fs::remove(path);
  EXPECT_EQ(loaded.Config().ToJson(), model.Config().ToJson());

  torch::NoGradGuard noGrad;
  model.Encoder()->eval();
  loaded.Encoder()->eval();
  model.Decoder()->eval();
  loaded.Decoder()->eval();
  const torch::Tensor patches = torch::rand({ 2, 2, 64, 64 });
  const auto          a = model.Encoder()->forward(patches);
  const auto          b = loaded.Encoder()->forward(patches);
  EXPECT_TRUE(torch::equal(a.high_level, b.high_level));
  EXPECT_TRUE(torch::equal(model.Decoder()->forward(a.low_level, a.high_level, { 64, 64 }),
                           loaded.Decoder()->forward(b.low_level, b.high_level, { 64, 64 })));
  const torch::Tensor volume = torch::rand({ 1, 1, 8, 16, 16 });
  model.Coarse()->eval();
  loaded.Coarse()->eval();
  EXPECT_TRUE(torch::equal(model.Coarse()->forward(volume), loaded.Coarse()->forward(volume)));
}

TEST(AGCLModel, AStride2DecoderSavesAndLoadsWithItsStemStage)
{
  torch::manual_seed(4);
  agcl::ModelConfig config = Tiny();
  config.decoder_output_stride = 2;
  agcl::AGCLModel model(config);
  ASSERT_TRUE(model.Decoder()->UsesStem());
  EXPECT_EQ(model.Decoder()->options().stem_channels(), config.encoder_width);
  EXPECT_NE(model.Decoder()->named_parameters().find("stem_projection.0.conv.weight"), nullptr);
  const fs::path path = fs::temp_directory_path() / ("agcl-model-test-s2-" + std::to_string(::getpid()) + ".agcl");
  model.Save(path.string());
  agcl::AGCLModel loaded = agcl::AGCLModel::Load(path.string());
  fs::remove(path);
  EXPECT_TRUE(loaded.Decoder()->UsesStem());
  torch::NoGradGuard noGrad;
  model.Encoder()->eval();
  model.Decoder()->eval();
  loaded.Encoder()->eval();
  loaded.Decoder()->eval();
  const torch::Tensor patches = torch::rand({ 2, 2, 64, 64 });
  const auto          a = model.Encoder()->forward(patches);
  const auto          b = loaded.Encoder()->forward(patches);
  EXPECT_TRUE(torch::equal(model.Decoder()->forward(a.low_level, a.high_level, { 64, 64 }, a.stem),
                           loaded.Decoder()->forward(b.low_level, b.high_level, { 64, 64 }, b.stem)));
  // The same weights cannot be read into a stride-4 model (no stem stage there): refused.
  agcl::ModelConfig plain = config;
  plain.decoder_output_stride = 4;
  agcl::ModelBundle bundle = model.ToBundle();
  bundle.config = plain.ToJson();
  ExpectConfigError([&] { agcl::AGCLModel::FromBundle(bundle); }, "decoder.");
}

TEST(AGCLModel, WeightsForAnotherOrganSetAreRefused)
{
  // The config says 2 organs; the weights are those of a 4-organ model (coarse classifier: 5 classes).
  agcl::AGCLModel   model(Tiny());
  agcl::ModelBundle bundle = model.ToBundle();
  bundle.config["organs"] = { { { "name", "spleen" }, { "label", 1 } }, { { "name", "liver" }, { "label", 6 } } };
  ExpectConfigError([&] { agcl::AGCLModel::FromBundle(bundle); }, "coarse.");
}

TEST(AGCLModel, WeightsForAnotherWidthAreRefused)
{
  agcl::AGCLModel   model(Tiny());
  agcl::ModelBundle bundle = model.ToBundle();
  bundle.config["encoder"]["width"] = 4; // fewer parameters than the weights: passes the size bound below
  ExpectConfigError([&] { agcl::AGCLModel::FromBundle(bundle); }, "encoder.");
}

TEST(AGCLModel, AConfigDeclaringMoreWeightsThanTheBundleHoldsIsRefusedBeforeBuilding)
{
  agcl::AGCLModel   model(Tiny());
  agcl::ModelBundle bundle = model.ToBundle();
  // Width 512: at least 9 x 2 x 512^2 x (1 + 4 + 16 + 64) = 401 M parameters (1.6 GB) would be
  // built before the first shape check; the bundle holds well under 1 MB.
  bundle.config["encoder"]["width"] = 512;
  ExpectConfigError([&] { agcl::AGCLModel::FromBundle(bundle); }, "declares networks of at least 401");
  // Sizes beyond kMaxParameters are refused by the configuration itself.
  nlohmann::json json = Tiny().ToJson();
  json["encoder"] = { { "depth", 101 }, { "width", 1024 } };
  ExpectConfigError([&] { agcl::ModelConfig::FromJson(json); }, "networks of at most 2147483648 parameters");
}

TEST(ModelConfig, MinimumParameterCountBoundsTheBuiltNetworksFromBelow)
{
  // The bound against the built networks' parameter counts, for every encoder depth and a few
  // sizes: at most the real count, and not vacuous (at least a quarter of it).
  for (const int64_t depth : { 18, 34, 50, 101 })
    for (const int64_t width : { 4, 8 })
      for (const int64_t levels : { 2, 4 })
        for (const int64_t dimensions : { 3, 2 })
        {
          agcl::ModelConfig config = Tiny();
          config.image_dimensions = dimensions;
          config.image_channels = dimensions == 2 ? 3 : 1;
          config.encoder_depth = depth;
          config.encoder_width = width;
          config.coarse_levels = levels;
          config.decoder_channels = 8 * width;
          agcl::AGCLModel model(config);
          uint64_t        built = 0;
          for (const auto * module : { static_cast<const torch::nn::Module *>(model.Coarse().get()),
                                       static_cast<const torch::nn::Module *>(model.Encoder().get()),
                                       static_cast<const torch::nn::Module *>(model.Decoder().get()) })
            for (const auto & p : module->parameters())
              built += static_cast<uint64_t>(p.numel());
          const uint64_t bound = config.MinimumParameterCount();
          EXPECT_LE(bound, built) << "depth " << depth << " width " << width << " levels " << levels << " "
                                  << dimensions << "D";
          EXPECT_GE(4 * bound, built) << "depth " << depth << " width " << width << " levels " << levels << " "
                                      << dimensions << "D";
        }
}

TEST(AGCLModel, CoarseClassesAreTheArgmaxOfTheZeroPaddedVolume)
{
  torch::manual_seed(5);
  agcl::AGCLModel     model(Tiny()); // levels 3: sizes padded to multiples of 4
  const torch::Tensor volume = torch::rand({ 5, 7, 9 });
  const torch::Tensor classes = model.PredictCoarseClasses(volume, torch::kCPU);
  ASSERT_EQ(classes.sizes(), volume.sizes());
  EXPECT_EQ(classes.scalar_type(), torch::kByte);

  // Reference: pad by hand into an 8 x 8 x 12 zero volume, run, argmax, crop.
  torch::NoGradGuard noGrad;
  torch::Tensor      padded = torch::zeros({ 1, 1, 8, 8, 12 });
  padded.index_put_({ 0, 0, torch::indexing::Slice(0, 5), torch::indexing::Slice(0, 7), torch::indexing::Slice(0, 9) },
                    volume);
  model.Coarse()->eval();
  const torch::Tensor expected =
    model.Coarse()->forward(padded).argmax(1)[0].slice(0, 0, 5).slice(1, 0, 7).slice(2, 0, 9).to(torch::kByte);
  EXPECT_TRUE(torch::equal(classes, expected));
  EXPECT_LE(classes.max().item<int>(), 4); // background + 4 organs

  EXPECT_THROW(model.PredictCoarseClasses(torch::rand({ 4, 4 }), torch::kCPU), std::invalid_argument);
  EXPECT_THROW(model.PredictCoarseClasses(torch::ones({ 4, 4, 4 }, torch::kLong), torch::kCPU), std::invalid_argument);
}

TEST(AGCLModel, AttentionSeedsAreTheArgmaxPlusEveryVoxelAboveTheProbabilityFloor)
{
  torch::manual_seed(6);
  agcl::ModelConfig config = Tiny();
  const double      floor = 0.15; // 5 classes: an untrained network's probabilities lie around 0.2
  for (const double p : { 0.0, floor })
  {
    config.coarse_attention_probability = p;
    agcl::AGCLModel model(config);
    torch::manual_seed(7);
    const torch::Tensor volume = torch::rand({ 8, 8, 12 }); // a size multiple: no padding
    const auto          prediction = model.PredictCoarse(volume, torch::kCPU);
    ASSERT_EQ(prediction.seeds.sizes(), (std::vector<int64_t>{ 4, 8, 8, 12 }));
    EXPECT_EQ(prediction.seeds.scalar_type(), torch::kByte);
    EXPECT_TRUE(torch::equal(prediction.classes, model.PredictCoarseClasses(volume, torch::kCPU)));

    // Reference: softmax of the logits in double precision, voxel by voxel.
    torch::NoGradGuard noGrad;
    model.Coarse()->eval();
    const torch::Tensor logits = model.Coarse()->forward(volume.unsqueeze(0).unsqueeze(0))[0].to(torch::kDouble);
    const torch::Tensor probability = torch::softmax(logits, 0);
    const auto          classes = prediction.classes.accessor<uint8_t, 3>();
    const auto          seeds = prediction.seeds.accessor<uint8_t, 4>();
    const auto          prob = probability.accessor<double, 4>();
    int64_t             beyondArgmax = 0;
    for (int64_t o = 0; o < 4; ++o)
      for (int64_t z = 0; z < 8; ++z)
        for (int64_t y = 0; y < 8; ++y)
          for (int64_t x = 0; x < 12; ++x)
          {
            const bool argmax = classes[z][y][x] == o + 1;
            const bool expected = argmax || (p > 0 && prob[o + 1][z][y][x] >= p);
            ASSERT_EQ(seeds[o][z][y][x] != 0, expected) << "organ " << o << " at " << z << "," << y << "," << x;
            beyondArgmax += expected && !argmax;
          }
    // The quantised probabilities: round(255 p) of the double-precision softmax, within one
    // step for float rounding at the half-way points.
    ASSERT_EQ(prediction.probabilities.sizes(), (std::vector<int64_t>{ 4, 8, 8, 12 }));
    EXPECT_EQ(prediction.probabilities.scalar_type(), torch::kByte);
    const torch::Tensor expectedBytes = probability.slice(0, 1).mul(255.0).round();
    EXPECT_LE((prediction.probabilities.to(torch::kDouble) - expectedBytes).abs().max().item<double>(), 1.0);
    EXPECT_GT(expectedBytes.max().item<double>() - expectedBytes.min().item<double>(), 20.0); // not constant
    if (p > 0)
      EXPECT_GT(beyondArgmax, 50); // the floor adds voxels (the test is not decided by the argmax alone)
    else
      EXPECT_EQ(beyondArgmax, 0);
  }
}

TEST(AGCLModel, LongVolumesRunInWindowsWhoseKeptSlicesAreAwayFromTheCuts)
{
  torch::manual_seed(9);
  agcl::ModelConfig config = Tiny();
  config.coarse_window_slices = 8; // H = 2 slices of context on each side of a cut
  agcl::AGCLModel     model(config);
  const int64_t       D = 21, W = 8, H = 2;
  const torch::Tensor volume = torch::rand({ D, 12, 12 });
  const auto          prediction = model.PredictCoarse(volume, torch::kCPU);
  const torch::Tensor classes = prediction.classes;
  ASSERT_EQ(classes.sizes(), volume.sizes());

  // Reference: every possible window of W slices, run on its own (padded by hand to 8 x 12 x 12).
  torch::NoGradGuard         noGrad;
  std::vector<torch::Tensor> windows, windowProbabilities;
  for (int64_t a = 0; a + W <= D; ++a)
  {
    const torch::Tensor logits = model.Coarse()->forward(volume.slice(0, a, a + W).unsqueeze(0).unsqueeze(0))[0];
    windows.push_back(logits.argmax(0).to(torch::kByte));
    windowProbabilities.push_back(torch::softmax(logits.to(torch::kDouble), 0).slice(0, 1).mul(255.0).round());
  }
  // Each slice must be what some window gives it where the slice is at least H slices from
  // that window's cuts (a window edge that is not the volume's own end).
  for (int64_t z = 0; z < D; ++z)
  {
    bool matched = false;
    for (int64_t a = 0; a + W <= D && !matched; ++a)
    {
      const bool farFromStart = a == 0 || z - a >= H;
      const bool farFromEnd = a + W == D || a + W - 1 - z >= H;
      matched = z >= a && z < a + W && farFromStart && farFromEnd && torch::equal(classes[z], windows[a][z - a]) &&
                (prediction.probabilities.select(1, z).to(torch::kDouble) - windowProbabilities[a].select(1, z - a))
                    .abs()
                    .max()
                    .item<double>() <= 1.0;
    }
    EXPECT_TRUE(matched) << "slice " << z;
  }
  // Not a trivial check: the windows do not all give the same slices.
  int64_t differing = 0;
  for (int64_t a = 1; a + W <= D; ++a)
    differing += !torch::equal(windows[a][W / 2 - 1], windows[a - 1][W / 2]);
  EXPECT_GT(differing, 0);
}

TEST(AGCLModel, CoarseClassesOnCudaAgreeWithTheCpu)
{
  if (!agcl::CudaAvailable())
  {
    GTEST_SKIP() << "no CUDA device";
  }
  torch::manual_seed(12);
  agcl::ModelConfig config = Tiny();
  config.coarse_window_slices = 8;
  agcl::AGCLModel     model(config);
  const torch::Tensor volume = torch::rand({ 21, 24, 24 });
  const torch::Tensor cpu = model.PredictCoarseClasses(volume, torch::kCPU);
  const torch::Tensor cuda = model.PredictCoarseClasses(volume, torch::Device(torch::kCUDA));
  EXPECT_TRUE(cuda.device().is_cpu());
  // The GPU's convolutions may use TF32: near-ties of the argmax can differ, nothing more.
  EXPECT_GE(cpu.eq(cuda).to(torch::kFloat).mean().item<double>(), 0.99);
}
