/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModelBundle.h"
#include "agcl/ResNetEncoder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {
namespace fs = std::filesystem;

fs::path
Scratch(const std::string & name)
{
  const fs::path dir = fs::temp_directory_path() / ("agcl-bundle-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string
ReadBytes(const fs::path & path)
{
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void
WriteBytes(const fs::path & path, const std::string & bytes)
{
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename F>
void
ExpectBundleError(F f, const std::string & text)
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

agcl::ModelBundle
Sample()
{
  agcl::ModelBundle bundle;
  bundle.config = { { "encoder", { { "depth", 18 }, { "width", 16 } } },
                    { "patch_size", 64 },
                    { "organs", { "spleen", "liver" } } };
  bundle.Add("f32", torch::arange(12, torch::kFloat).view({ 3, 4 }) * 0.5);
  bundle.Add("f64", torch::tensor({ 1.0 / 3.0, -2.5e-300 }, torch::kDouble));
  bundle.Add("bf16", torch::tensor({ 1.5f, -3.25f }).to(torch::kBFloat16));
  bundle.Add("f16", torch::tensor({ 0.1f }).to(torch::kHalf));
  bundle.Add("i64", torch::tensor({ int64_t{ 1 } << 40, int64_t{ -7 } }, torch::kLong));
  bundle.Add("u8", torch::arange(256, torch::kLong).to(torch::kByte));
  bundle.Add("bool", torch::tensor({ true, false, true }));
  bundle.Add("empty", torch::zeros({ 0, 5 }));
  bundle.Add("strided", torch::arange(6, torch::kInt).view({ 2, 3 }).t()); // stored contiguous
  return bundle;
}
} // namespace

TEST(ModelBundle, RoundTripKeepsEveryTensorBitForBitAndTheConfig)
{
  const fs::path          file = Scratch("sample.agcl");
  const agcl::ModelBundle bundle = Sample();
  bundle.Save(file.string());
  EXPECT_FALSE(fs::exists(file.string() + ".partial"));
  const agcl::ModelBundle loaded = agcl::ModelBundle::Load(file.string());
  EXPECT_EQ(loaded.config, bundle.config);
  ASSERT_EQ(loaded.Tensors().size(), bundle.Tensors().size());
  for (size_t i = 0; i < bundle.Tensors().size(); ++i)
  {
    const auto & [name, tensor] = bundle.Tensors()[i];
    EXPECT_EQ(loaded.Tensors()[i].first, name);
    const at::Tensor & back = loaded.Get(name);
    EXPECT_EQ(back.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(torch::equal(back, tensor)) << name;
  }
  EXPECT_EQ(loaded.Get("strided")[2][1].item<int>(), 5); // logical order kept
}

TEST(ModelBundle, EncoderWeightsLoadIntoAFreshModelAndGiveTheSameOutput)
{
  torch::manual_seed(3);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  encoder->eval();
  agcl::ModelBundle bundle;
  bundle.AddModule("encoder", *encoder);
  const fs::path file = Scratch("encoder.agcl");
  bundle.Save(file.string());

  torch::manual_seed(4); // different initial weights
  agcl::ResNetEncoder fresh(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  fresh->eval();
  agcl::ModelBundle::Load(file.string()).LoadInto("encoder", *fresh);
  torch::NoGradGuard  noGrad;
  const torch::Tensor x = torch::randn({ 2, 2, 32, 32 });
  EXPECT_TRUE(torch::equal(encoder(x).high_level, fresh(x).high_level));

  agcl::ResNetEncoder other(agcl::ResNetEncoderOptions().depth(18).base_width(16));
  ExpectBundleError([&] { agcl::ModelBundle::Load(file.string()).LoadInto("encoder", *other); }, "has shape");
  ExpectBundleError([&] { agcl::ModelBundle::Load(file.string()).LoadInto("decoder", *fresh); }, "no tensor 'decoder.");
}

TEST(ModelBundle, WrongOrDamagedFilesAreRefusedWithTheirName)
{
  const fs::path file = Scratch("good.agcl");
  Sample().Save(file.string());
  const std::string good = ReadBytes(file);

  ExpectBundleError([&] { agcl::ModelBundle::Load(Scratch("missing.agcl").string()); }, "cannot open");
  const fs::path bad = Scratch("bad.agcl");
  WriteBytes(bad, "this is not a model file at all, just text");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "not an AGCL model file");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, bad.string());

  std::string version = good;
  version[8] = 2;
  WriteBytes(bad, version);
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "format version 2 is unknown");

  std::string header = good;
  header[24] = '#'; // the JSON's opening brace
  WriteBytes(bad, header);
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "corrupt JSON header");
  header = good;
  header[30] = '#'; // inside the key "config": still JSON, but not our header
  WriteBytes(bad, header);
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "not that of an AGCL model");

  // Truncated at every length: always a ModelBundleError, never a crash or a silent success.
  for (size_t length = 0; length < good.size(); length += 7)
  {
    WriteBytes(bad, good.substr(0, length));
    EXPECT_THROW(agcl::ModelBundle::Load(bad.string()), agcl::ModelBundleError) << "length " << length;
  }
  WriteBytes(bad, good.substr(0, good.size() - 1));
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "beyond the end of the file");
}

TEST(ModelBundle, ForgedOffsetsAndSizesAreChecked)
{
  const fs::path bad = Scratch("forged.agcl");
  auto           forge = [&](const std::string & tensorJson) {
    const std::string json = R"({"format":"agcl-model","version":1,"config":{},"tensors":[)" + tensorJson + "]}";
    std::string       bytes("AGCLMDL\0", 8);
    bytes += std::string("\x01\0\0\0\0\0\0\0", 8);
    for (int i = 0; i < 8; ++i)
      bytes.push_back(static_cast<char>((json.size() >> (8 * i)) & 0xFF));
    bytes += json;
    bytes.resize((bytes.size() + 63) / 64 * 64, '\0');
    bytes += std::string(16, '\0'); // 16 data bytes
    WriteBytes(bad, bytes);
  };
  forge(R"({"name":"a","dtype":"float32","shape":[4],"offset":0,"nbytes":16})");
  EXPECT_EQ(agcl::ModelBundle::Load(bad.string()).Get("a").numel(), 4);
  forge(R"({"name":"a","dtype":"float32","shape":[4],"offset":8,"nbytes":16})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "beyond the end");
  forge(R"({"name":"a","dtype":"float32","shape":[5],"offset":0,"nbytes":16})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "nbytes does not match");
  forge(R"({"name":"a","dtype":"float32","shape":[4611686018427387904,4],"offset":0,"nbytes":0})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "a'");
  forge(R"({"name":"a","dtype":"complex64","shape":[2],"offset":0,"nbytes":16})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "unknown dtype");
  forge(R"({"name":"a","dtype":"float32","shape":[-1],"offset":0,"nbytes":16})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "invalid shape");
  forge(R"({"name":"a","dtype":"float32","offset":0,"nbytes":16})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "malformed header");
}

TEST(ModelBundle, AFailedSaveLeavesNothingBehind)
{
  ExpectBundleError([] { Sample().Save("/proc/agcl/model.agcl"); }, "cannot write");
  EXPECT_FALSE(fs::exists("/proc/agcl/model.agcl.partial"));
}
