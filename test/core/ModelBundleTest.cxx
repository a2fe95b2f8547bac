/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AtomicFile.h"
#include "agcl/ModelBundle.h"
#include "agcl/ResNetEncoder.h"
#include "common/RemoveAtExit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace {
namespace fs = std::filesystem;

fs::path
Scratch(const std::string & name)
{
  const fs::path dir = fs::temp_directory_path() / ("agcl-bundle-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  static const agcl::test::RemoveAtExit cleanup(dir);
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

// A version-1 file written by hand: prefix, the given JSON header, padding, `dataBytes` zeros.
void
WriteBundleBytes(const fs::path & path, const std::string & json, size_t dataBytes)
{
  std::string bytes("AGCLMDL\0", 8);
  bytes += std::string("\x01\0\0\0\0\0\0\0", 8);
  for (int i = 0; i < 8; ++i)
    bytes.push_back(static_cast<char>((json.size() >> (8 * i)) & 0xFF));
  bytes += json;
  bytes.resize((bytes.size() + 63) / 64 * 64, '\0');
  bytes += std::string(dataBytes, '\0');
  WriteBytes(path, bytes);
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
  for (const auto & entry : fs::directory_iterator(file.parent_path()))
    EXPECT_EQ(entry.path().string().find("sample.agcl.partial"), std::string::npos) << entry.path();
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
    WriteBundleBytes(bad, R"({"format":"agcl-model","version":1,"config":{},"tensors":[)" + tensorJson + "]}", 16);
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

TEST(ModelBundle, HostileFilesAreRefusedBeforeLargeAllocations)
{
  // Not regular files: a folder, a FIFO (reading would block), a device (/dev/zero never ends).
  const fs::path folder = Scratch("folder.agcl");
  fs::create_directories(folder);
  ExpectBundleError([&] { agcl::ModelBundle::Load(folder.string()); }, "not a regular file");
  const fs::path fifo = Scratch("fifo.agcl");
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ExpectBundleError([&] { agcl::ModelBundle::Load(fifo.string()); }, "not a regular file");
  ExpectBundleError([&] { agcl::ModelBundle::Load("/dev/zero"); }, "not a regular file");

  const fs::path bad = Scratch("hostile.agcl");
  auto           write = [&](const std::string & json) { WriteBundleBytes(bad, json, 0); };
  // Nesting: the header object is level 1, "config" level 2, then `extra` arrays.
  auto nested = [](int extra) {
    return R"({"format":"agcl-model","version":1,"config":{"deep":)" + std::string(extra, '[') +
           std::string(extra, ']') + R"(},"tensors":[]})";
  };
  write(nested(62)); // 64 levels: read
  EXPECT_EQ(agcl::ModelBundle::Load(bad.string()).config.at("deep").size(), 1u);
  write(nested(63)); // 65 levels
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "nested deeper than 64 levels");
  write(nested(200000)); // would overflow the stack when the config is copied
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "nested deeper than 64 levels");
  // Brackets inside strings do not count.
  write(R"({"format":"agcl-model","version":1,"config":{"text":")" + std::string(1000, '[') + R"("},"tensors":[]})");
  EXPECT_EQ(agcl::ModelBundle::Load(bad.string()).config.at("text").get<std::string>().size(), 1000u);

  // A header over 16 MiB, and more than 100 000 tensors (each empty, so the file is valid
  // otherwise): refused by their counts.
  write(R"({"format":"agcl-model","version":1,"config":{"text":")" + std::string((16u << 20) + 1, 'x') +
        R"("},"tensors":[]})");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "at most 16777216 are read");
  std::string many = R"({"format":"agcl-model","version":1,"config":{},"tensors":[)";
  for (int i = 0; i <= 100000; ++i)
    many += (i ? "," : "") + std::string(R"({"name":"t)") + std::to_string(i) +
            R"(","dtype":"float32","shape":[0],"offset":0,"nbytes":0})";
  write(many + "]}");
  ExpectBundleError([&] { agcl::ModelBundle::Load(bad.string()); }, "lists 100001 tensors; at most 100000");
}

TEST(ModelBundle, LoadIntoRefusesAnotherDtypeAndNonFiniteWeights)
{
  torch::nn::Linear reference(3, 2);
  agcl::ModelBundle good;
  good.AddModule("m", *reference);
  torch::nn::Linear target(3, 2);
  good.LoadInto("m", *target);
  EXPECT_TRUE(torch::equal(target->weight, reference->weight));

  agcl::ModelBundle wrongType;
  wrongType.Add("m.weight", reference->weight.detach().to(torch::kDouble));
  wrongType.Add("m.bias", reference->bias.detach().clone());
  ExpectBundleError([&] { wrongType.LoadInto("m", *target); }, "'m.weight' has dtype Double; the model expects Float");

  for (const double bad : { std::nan(""), std::numeric_limits<double>::infinity() })
  {
    agcl::ModelBundle nonFinite;
    nonFinite.Add("m.weight", reference->weight.detach().clone());
    at::Tensor bias = reference->bias.detach().clone();
    bias[1] = bad;
    nonFinite.Add("m.bias", bias);
    ExpectBundleError([&] { nonFinite.LoadInto("m", *target); }, "'m.bias' holds NaN or infinite values");
  }
}

TEST(ModelBundle, AFailedSaveLeavesNothingBehind)
{
  ExpectBundleError([] { Sample().Save("/proc/agcl/model.agcl"); }, "cannot write");
  EXPECT_FALSE(fs::exists("/proc/agcl/model.agcl.partial"));
}

TEST(AtomicFile, ACrashAtEachWritePointLeavesTheOldOrTheNewFileWholeNeverAMix)
{
  const fs::path          file = Scratch("crash.agcl");
  const agcl::ModelBundle first = Sample();
  first.Save(file.string());
  const std::string oldBytes = ReadBytes(file);
  agcl::ModelBundle second = Sample();
  second.config["note"] = "the second save, a longer header";
  const std::vector<agcl::WritePoint> points = { agcl::WritePoint::Written,
                                                 agcl::WritePoint::Flushed,
                                                 agcl::WritePoint::BeforeRename,
                                                 agcl::WritePoint::Renamed };
  // An uninterrupted save of `second`, for its bytes; then `first` back in place.
  std::vector<agcl::WritePoint> seen;
  second.Save(file.string(), [&](agcl::WritePoint point, const fs::path &) { seen.push_back(point); });
  EXPECT_EQ(seen, points); // every point, in order
  const std::string newBytes = ReadBytes(file);
  ASSERT_NE(newBytes, oldBytes);
  for (const agcl::WritePoint crashAt : points)
  {
    first.Save(file.string());
    fs::path temporary;
    try
    {
      second.Save(file.string(), [&](agcl::WritePoint point, const fs::path & t) {
        if (point == crashAt)
        {
          temporary = t;
          throw std::runtime_error("simulated crash");
        }
      });
      ADD_FAILURE() << "the hook did not stop the save";
    }
    catch (const std::runtime_error & e)
    {
      EXPECT_STREQ(e.what(), "simulated crash"); // passed through unchanged
    }
    const bool renamed = crashAt == agcl::WritePoint::Renamed;
    EXPECT_EQ(ReadBytes(file), renamed ? newBytes : oldBytes) << agcl::WritePointName(crashAt);
    EXPECT_NO_THROW(agcl::ModelBundle::Load(file.string())) << agcl::WritePointName(crashAt);
    // The temporary file is this process's own name beside the target, holding every byte.
    EXPECT_EQ(temporary.parent_path(), file.parent_path());
    EXPECT_EQ(temporary.filename().string().rfind("crash.agcl.partial." + std::to_string(::getpid()) + ".", 0), 0u)
      << temporary;
    EXPECT_EQ(fs::exists(temporary), !renamed) << agcl::WritePointName(crashAt);
    if (!renamed)
      EXPECT_EQ(ReadBytes(temporary), newBytes) << agcl::WritePointName(crashAt);
  }
  // What a killed writer left is removed by RemoveStaleTemporaries, and nothing else.
  fs::path other = file.parent_path() / "crash.agcl.notes";
  agcl::WriteTextAtomically(other, "kept\n");
  agcl::RemoveStaleTemporaries(file);
  for (const auto & entry : fs::directory_iterator(file.parent_path()))
    EXPECT_EQ(entry.path().string().find("crash.agcl.partial"), std::string::npos) << entry.path();
  EXPECT_EQ(ReadBytes(file), newBytes);
  EXPECT_EQ(ReadBytes(other), "kept\n");
}

TEST(AtomicFile, TextIsWrittenWholeOrNotAtAllAndNoTemporaryRemains)
{
  const fs::path file = Scratch("settings.json");
  agcl::WriteTextAtomically(file, "first\n");
  agcl::WriteTextAtomically(file, "second, longer\n"); // replaces the whole file
  EXPECT_EQ(ReadBytes(file), "second, longer\n");
  // A folder that does not exist: an error naming the file, the old file untouched elsewhere.
  const fs::path missing = Scratch("no_such_folder") / "out.csv";
  try
  {
    agcl::WriteTextAtomically(missing, "x");
    ADD_FAILURE() << "wrote into a missing folder";
  }
  catch (const std::runtime_error & e)
  {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + missing.string() + "'"), std::string::npos) << e.what();
  }
  // Over a folder: the rename fails, the temporary file is removed.
  const fs::path folder = Scratch("a_folder");
  fs::create_directories(folder / "inside");
  EXPECT_THROW(agcl::WriteTextAtomically(folder, "x"), std::runtime_error);
  for (const auto & entry : fs::directory_iterator(file.parent_path()))
    EXPECT_EQ(entry.path().string().find(".partial"), std::string::npos) << entry.path();
}

TEST(AtomicFile, SyncFileAndSyncFolderReportAMissingPath)
{
  const fs::path file = Scratch("synced.txt");
  agcl::WriteTextAtomically(file, "x\n");
  EXPECT_TRUE(agcl::SyncFile(file));
  EXPECT_TRUE(agcl::SyncFolder(file.parent_path()));
  errno = 0;
  EXPECT_FALSE(agcl::SyncFile(Scratch("never_written.txt")));
  EXPECT_EQ(errno, ENOENT);
  EXPECT_FALSE(agcl::SyncFolder(Scratch("no_such_folder_either")));
}
