/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl info: versions of the module, ITK and LibTorch; CUDA devices; threads. With a model
// bundle: its architecture, organs, modalities, inference settings and provenance.

#include "Subcommands.h"

#include "agcl/AGCLModel.h"
#include "agcl/BuildInfo.h"

#include "itkVersion.h"

#include <iostream>
#include <memory>

namespace agcl::cli {

namespace {
int
PrintModel(const std::string & file)
{
  agcl::ModelConfig config;
  size_t            tensors = 0;
  int64_t           parameters = 0;
  try
  {
    const agcl::ModelBundle bundle = agcl::ModelBundle::Load(file);
    // Validates the configuration and every network tensor's presence and shape.
    config = agcl::AGCLModel::FromBundle(bundle).Config();
    tensors = bundle.Tensors().size();
    for (const auto & entry : bundle.Tensors())
      parameters += entry.second.numel();
  }
  catch (const agcl::ModelBundleError & e)
  {
    throw InputError(std::string(e.what()).find(file) == std::string::npos ? file + ": " + e.what() : e.what());
  }
  std::cout << "model: " << file << "\n"
            << "encoder: ResNet-" << config.encoder_depth << ", width " << config.encoder_width << ", output stride "
            << config.output_stride << "\n"
            << "decoder: ASPP, " << config.decoder_channels << " channels, low-level projection "
            << config.decoder_low_level_projection << ", logits at stride " << config.decoder_output_stride << "\n"
            << "coarse network: 3D U-Net, " << config.coarse_levels << " levels, base " << config.coarse_base_channels
            << " channels, at " << config.coarse_spacing_mm[0] << " x " << config.coarse_spacing_mm[1] << " x "
            << config.coarse_spacing_mm[2] << " mm, windows of " << config.coarse_window_slices << " slices\n"
            << "patches: " << config.patch_size << " x " << config.patch_size << ", spacing "
            << (config.patch_spacing_mm > 0 ? std::to_string(config.patch_spacing_mm) + " mm" : "of the image")
            << ", window " << config.window_low << ".." << config.window_high << " HU\n"
            << "attention margin: " << config.margin_mm << " mm; tile overlap " << config.overlap << "; threshold "
            << config.threshold << "; coarse vote in the fusion " << config.coarse_weight
            << (config.coarse_vote_scaled_to_peak ? " (scaled to each organ's peak)" : "") << "\n"
            << "organs (" << config.organs.size() << "):";
  for (const auto & organ : config.organs)
    std::cout << " " << organ.label << "=" << organ.name
              << (organ.threshold ? " (threshold " + std::to_string(*organ.threshold).substr(0, 4) + ")" : "");
  std::cout << "\nmodalities:";
  for (const auto & modality : config.modalities)
    std::cout << " " << modality;
  std::cout << "\nweights: " << tensors << " tensors, " << parameters << " values\n"
            << "provenance: " << config.provenance.dump() << "\n"
            << "statistics: "
            << (config.statistics.empty()
                  ? std::string("none (plausibility warnings for missing organs only; agcl calibrate adds them)")
                  : config.statistics.value("source", std::string("(no source)")) + ", intensity threshold " +
                      std::to_string(config.statistics["intensity"].value("threshold_hu", 0.0)) + " HU")
            << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterInfo(CLI::App & app, Runner & runner)
{
  auto       model = std::make_shared<std::string>();
  CLI::App * sub = app.add_subcommand(
    "info", "Print versions, CUDA devices and the thread count; with a model file, what the model is");
  sub->add_option("model", *model, "a model bundle (*.agcl) to describe");
  sub->callback([&runner, model]() {
    runner = [model]() -> int {
      if (!model->empty())
        return PrintModel(*model);
      std::cout << agcl::BuildSummary() << "ITK " << itk::Version::GetITKVersion() << std::endl;
      return kSuccess;
    };
  });
}

} // namespace agcl::cli
