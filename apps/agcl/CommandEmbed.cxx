/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl embed: the encoder's representations of query patches, projected on their first two
// principal components, coloured by organ and shaped by modality (the paper's Fig. 3), as an SVG
// picture and a CSV; plus how well organ and modality can be told apart in the representation
// (leave-one-out 1-nearest-neighbour accuracy, cosine distance).

#include "Subcommands.h"

#include "agcl/AGCLModel.h"
#include "agcl/Device.h"
#include "itkManifestTrainingData.h"
#include "OutputFiles.h"

#include <torch/torch.h>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;

struct EmbedOptions
{
  std::string model, manifest, split = "test", out, device = "cpu", attention = "coarse";
  int64_t     patchesPerOrgan = 16;
  uint64_t    seed = 1;
  bool        representations = false;
};

// Share of points whose nearest other point (cosine) has the same class.
double
NearestNeighbourAccuracy(const torch::Tensor & unit, const torch::Tensor & classes)
{
  torch::Tensor similarity = torch::matmul(unit, unit.t());
  similarity.fill_diagonal_(-2.0);
  const torch::Tensor nearest = similarity.argmax(1);
  return classes.index_select(0, nearest).eq(classes).to(torch::kDouble).mean().item<double>();
}

int
RunEmbed(const EmbedOptions & options)
{
  if (options.patchesPerOrgan < 1)
    throw InputError("--patches-per-organ " + std::to_string(options.patchesPerOrgan) + ": expected at least 1");
  if (options.attention != "coarse" && options.attention != "truth")
    throw InputError("--attention '" + options.attention + "': expected coarse or truth");
  c10::Device device = torch::kCPU;
  try
  {
    device = ParseDevice(options.device);
  }
  catch (const std::exception & e)
  {
    throw InputError(std::string("--device: ") + e.what());
  }
  std::shared_ptr<AGCLModel> model;
  try
  {
    // A model bundle or a trainer checkpoint (same format; the checkpoint's extra tensors are ignored).
    model = std::make_shared<AGCLModel>(AGCLModel::FromBundle(ModelBundle::Load(options.model)));
  }
  catch (const ModelBundleError & e)
  {
    throw InputError("--model '" + options.model + "': " + e.what());
  }
  const ModelConfig &                        config = model->Config();
  std::unique_ptr<itk::ManifestTrainingData> data;
  try
  {
    data = std::make_unique<itk::ManifestTrainingData>(options.manifest, config);
  }
  catch (const ManifestError & e)
  {
    throw InputError(e.what());
  }
  const auto subjects = data->Subjects();
  model->Encoder()->to(device);
  model->Encoder()->eval();
  model->Coarse()->to(device);

  std::vector<torch::Tensor> representations, organs, modalities;
  std::vector<size_t>        rows;
  for (size_t i = 0; i < subjects.size(); ++i)
  {
    if (options.split != "all" && subjects[i].split != options.split)
      continue;
    const PatchSet patches =
      data->Patches(i,
                    options.attention == "truth" ? AttentionSource::Truth : AttentionSource::Coarse,
                    *model,
                    device,
                    options.patchesPerOrgan,
                    options.seed * 1000003 + i);
    if (patches.Size() == 0)
      continue;
    torch::NoGradGuard noGrad;
    for (int64_t first = 0; first < patches.Size(); first += 64)
    {
      const int64_t n = std::min<int64_t>(64, patches.Size() - first);
      representations.push_back(model->Encoder()->Represent(patches.image.narrow(0, first, n).to(device)).cpu());
    }
    organs.push_back(patches.organ);
    modalities.push_back(patches.modality);
    rows.insert(rows.end(), static_cast<size_t>(patches.Size()), i);
  }
  if (rows.size() < 3)
    throw InputError("manifest '" + options.manifest + "': fewer than 3 query patches in split '" + options.split +
                     "' (no volumes of that split, or no organ with attention)");
  const torch::Tensor x = torch::cat(representations).to(torch::kDouble);
  const torch::Tensor organ = torch::cat(organs), modality = torch::cat(modalities);

  // PCA: the centred representations' two leading right singular vectors.
  const torch::Tensor centred = x - x.mean(0, true);
  const auto [u, s, vh] = torch::linalg::svd(centred, false, c10::nullopt);
  const torch::Tensor projected = torch::matmul(centred, vh.narrow(0, 0, 2).t());
  const torch::Tensor variance = s.pow(2);
  const double        explained1 = (variance[0] / variance.sum()).item<double>();
  const double        explained2 = (variance[1] / variance.sum()).item<double>();
  const torch::Tensor unit = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
  const double        organAccuracy = NearestNeighbourAccuracy(unit, organ);
  const double        modalityAccuracy = NearestNeighbourAccuracy(unit, modality);
  const double        jointAccuracy =
    NearestNeighbourAccuracy(unit, modality * static_cast<int64_t>(config.organs.size()) + organ);

  std::error_code error;
  fs::create_directories(options.out, error);
  if (error)
    throw InputError("--out '" + options.out + "': cannot create the folder (" + error.message() + ")");
  auto colorOf = [&](int64_t index) { return itk::LabelColor(static_cast<int>(config.organs[index].label)); };

  // CSV.
  std::ostringstream csv;
  csv << "subject,image,modality,organ,pc1,pc2\n";
  const auto p = projected.accessor<double, 2>();
  for (size_t k = 0; k < rows.size(); ++k)
  {
    const auto & row = data->Rows()[rows[k]];
    csv << row.subject << "," << row.image << "," << config.modalities[modality[k].item<int64_t>()] << ","
        << config.organs[organ[k].item<int64_t>()].name << "," << p[k][0] << "," << p[k][1] << "\n";
  }
  WriteTextAtomically(fs::path(options.out) / "embedding.csv", csv.str());
  if (options.representations)
  {
    // The representations themselves, for analyses elsewhere (full double precision).
    std::ostringstream table;
    table << std::setprecision(17) << "subject,image,modality,organ";
    for (int64_t d = 0; d < x.size(1); ++d)
      table << ",r" << d;
    table << "\n";
    const auto r = x.accessor<double, 2>();
    for (size_t k = 0; k < rows.size(); ++k)
    {
      const auto & row = data->Rows()[rows[k]];
      table << row.subject << "," << row.image << "," << config.modalities[modality[k].item<int64_t>()] << ","
            << config.organs[organ[k].item<int64_t>()].name;
      for (int64_t d = 0; d < x.size(1); ++d)
        table << "," << r[static_cast<int64_t>(k)][d];
      table << "\n";
    }
    WriteTextAtomically(fs::path(options.out) / "representations.csv", table.str());
  }

  // SVG: 640 x 560 plot, legend on the right; circles = modality 0, squares = modality 1, ...
  const double width = 900, height = 620, plot = 560, margin = 40;
  const double minX = projected.select(1, 0).min().item<double>(), maxX = projected.select(1, 0).max().item<double>();
  const double minY = projected.select(1, 1).min().item<double>(), maxY = projected.select(1, 1).max().item<double>();
  auto         sx = [&](double v) { return margin + (v - minX) / std::max(1e-12, maxX - minX) * plot; };
  auto         sy = [&](double v) { return margin + plot - (v - minY) / std::max(1e-12, maxY - minY) * plot; };
  auto         marker = [&](int64_t m, double cx, double cy, const std::array<int, 3> & c) {
    std::ostringstream os;
    const std::string  fill =
      "rgb(" + std::to_string(c[0]) + "," + std::to_string(c[1]) + "," + std::to_string(c[2]) + ")";
    if (m % 2 == 0)
      os << "<circle cx=\"" << Fixed(cx, 1) << "\" cy=\"" << Fixed(cy, 1) << "\" r=\"3.5\" fill=\"" << fill
         << "\" fill-opacity=\"0.8\"/>\n";
    else
      os << "<rect x=\"" << Fixed(cx - 3.5, 1) << "\" y=\"" << Fixed(cy - 3.5, 1)
         << "\" width=\"7\" height=\"7\" fill=\"none\" stroke=\"" << fill << "\" stroke-width=\"1.5\"/>\n";
    return os.str();
  };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<rect x=\"" << margin << "\" y=\"" << margin << "\" width=\"" << plot << "\" height=\"" << plot
      << "\" fill=\"none\" stroke=\"#888\"/>\n"
      << "<text x=\"" << margin << "\" y=\"24\">PCA of the encoder's representations (" << rows.size()
      << " patches, split " << options.split << "): PC1 " << Fixed(100 * explained1, 1) << "%, PC2 "
      << Fixed(100 * explained2, 1) << "% of the variance</text>\n";
  for (size_t k = 0; k < rows.size(); ++k)
    svg << marker(modality[k].item<int64_t>(), sx(p[k][0]), sy(p[k][1]), colorOf(organ[k].item<int64_t>()));
  double y = margin + 10;
  for (size_t o = 0; o < config.organs.size(); ++o, y += 18)
    svg << marker(0, 625, y - 4, colorOf(static_cast<int64_t>(o))) << "<text x=\"635\" y=\"" << y << "\">"
        << config.organs[o].name << "</text>\n";
  y += 10;
  for (size_t m = 0; m < config.modalities.size() && m < 2; ++m, y += 18)
    svg << marker(static_cast<int64_t>(m), 625, y - 4, { 60, 60, 60 }) << "<text x=\"635\" y=\"" << y << "\">"
        << config.modalities[m] << "</text>\n";
  svg << "<text x=\"" << margin << "\" y=\"" << margin + plot + 22 << "\">1-NN accuracy (cosine): organ "
      << Fixed(organAccuracy, 3) << ", modality " << Fixed(modalityAccuracy, 3) << ", modality x organ "
      << Fixed(jointAccuracy, 3) << "</text>\n</svg>\n";
  WriteTextAtomically(fs::path(options.out) / "embedding.svg", svg.str());

  std::cout << "patches: " << rows.size() << " (split " << options.split << ", attention " << options.attention
            << ")\nexplained variance: PC1 " << Fixed(explained1, 4) << ", PC2 " << Fixed(explained2, 4)
            << "\n1-NN accuracy (cosine, leave-one-out): organ " << Fixed(organAccuracy, 4) << ", modality "
            << Fixed(modalityAccuracy, 4) << ", modality x organ " << Fixed(jointAccuracy, 4) << "\nwrote "
            << (fs::path(options.out) / "embedding.svg").string() << " and "
            << (fs::path(options.out) / "embedding.csv").string() << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterEmbed(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<EmbedOptions>();
  CLI::App * sub = app.add_subcommand(
    "embed",
    "PCA picture of the encoder's representations of query patches, coloured by organ and shaped by modality "
    "(the paper's Fig. 3), with 1-nearest-neighbour separability of organ and modality");
  sub->add_option("--model", options->model, "model bundle (*.agcl) or trainer checkpoint")->required();
  sub->add_option("--manifest", options->manifest, "cohort CSV: subject,image,label,modality,split")->required();
  sub->add_option("--split", options->split, "train, val, test or all")->capture_default_str();
  sub->add_option("--out", options->out, "output folder (embedding.svg, embedding.csv)")->required();
  sub->add_option("--patches-per-organ", options->patchesPerOrgan, "patches per organ and volume")
    ->capture_default_str();
  sub->add_option("--attention", options->attention, "coarse (the model's coarse network) or truth")
    ->capture_default_str();
  sub->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--seed", options->seed, "seed of the patch centres")->capture_default_str();
  sub->add_flag("--representations",
                options->representations,
                "also write representations.csv: each patch's representation (the vectors the PCA projects)");
  sub->callback([options, &runner] { runner = [options] { return RunEmbed(*options); }; });
}

} // namespace agcl::cli
