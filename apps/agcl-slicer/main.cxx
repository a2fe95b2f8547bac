/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl-slicer: the segmentation as a 3D Slicer command-line module (Slicer Execution Model).
// Slicer runs the executable with a bare `--xml` to learn its parameters, then runs it as
//   agcl-slicer --model M.agcl [--device cpu] [--threads N] [--no-postprocessing] INPUT OUTPUT
// with the volumes as temporary files it writes and reads back, and shows the progress lines
// (<filter-progress>) that the program prints on standard output.
#include "itkAGCLSegmentationFilter.h"
#include "itkReadVolume.h"
#include "itkWriteImageAtomically.h"

#include "agcl/BuildInfo.h"
#include "agcl/Device.h"
#include "agcl/Threading.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

namespace {
using CTImage = itk::Image<short, 3>;
using LabelImage = itk::Image<unsigned char, 3>;

// Exit codes, as the agcl tool's.
constexpr int kSuccess = 0;
constexpr int kBadInput = 1;
constexpr int kRuntimeFailure = 2;

std::string
ModuleDescription()
{
  return R"(<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Segmentation</category>
  <title>AGCL Abdominal Organs</title>
  <description><![CDATA[Segments 12 abdominal organs of a CT (spleen, kidneys, gallbladder, esophagus, liver, stomach, aorta, inferior vena cava, portal and splenic veins, pancreas, adrenal gland) with attention-guided, semantic-aware contrastive learning: a coarse network places an attention map per organ, a contrastively pre-trained encoder and an ASPP decoder segment query patches inside it, and the patches are fused into one label map. Label values are those of the model (BTCV's for the shipped phantom model).]]></description>
  <version>)" +
         agcl::Version() + R"(</version>
  <license>Apache 2.0</license>
  <contributor>AGCL for ITK</contributor>
  <acknowledgements><![CDATA[The method is that of H. H. Lee et al., "Semantic-Aware Contrastive Learning for Multi-object Medical Image Segmentation". Built with ITK and LibTorch.]]></acknowledgements>
  <parameters>
    <label>Volumes</label>
    <description><![CDATA[The CT and the organ label map]]></description>
    <image>
      <name>inputVolume</name>
      <label>Input CT</label>
      <channel>input</channel>
      <index>0</index>
      <description><![CDATA[An abdominal CT in Hounsfield units]]></description>
    </image>
    <image type="label">
      <name>outputLabelMap</name>
      <label>Organ label map</label>
      <channel>output</channel>
      <index>1</index>
      <description><![CDATA[One label value per organ, 0 elsewhere, on the input's grid]]></description>
    </image>
  </parameters>
  <parameters>
    <label>Model and device</label>
    <description><![CDATA[The trained model and where it runs]]></description>
    <file fileExtensions=".agcl">
      <name>model</name>
      <longflag>model</longflag>
      <label>Model file</label>
      <channel>input</channel>
      <description><![CDATA[A model bundle (.agcl), e.g. models/phantom-demo.agcl of the AGCL for ITK project]]></description>
    </file>
    <string-enumeration>
      <name>device</name>
      <longflag>device</longflag>
      <label>Device</label>
      <description><![CDATA[cpu, or cuda (the first GPU) where the program was built with CUDA]]></description>
      <default>cpu</default>
      <element>cpu</element>
      <element>cuda</element>
    </string-enumeration>
    <integer>
      <name>threads</name>
      <longflag>threads</longflag>
      <label>CPU threads</label>
      <description><![CDATA[Threads for the networks on the CPU; 0 = one per core]]></description>
      <default>0</default>
      <constraints>
        <minimum>0</minimum>
        <maximum>256</maximum>
        <step>1</step>
      </constraints>
    </integer>
    <boolean>
      <name>noPostProcessing</name>
      <longflag>no-postprocessing</longflag>
      <label>No post-processing</label>
      <description><![CDATA[Keep every connected piece of each organ and leave holes unfilled (by default each organ keeps its largest component, holes filled)]]></description>
      <default>false</default>
    </boolean>
  </parameters>
</executable>
)";
}

// Prints the message ("error" for bad input, "failed" otherwise) and returns the exit code.
int
Fail(int code, const std::string & message)
{
  std::cerr << "agcl-slicer: " << (code == kBadInput ? "error: " : "failed: ") << message << std::endl;
  return code;
}

// Slicer's progress protocol: <filter-start>, <filter-progress> (0..1), <filter-end>, each
// flushed at once (Slicer reads the pipe as the program runs).
void
FilterStart(const std::string & comment)
{
  std::cout << "<filter-start>\n<filter-name>AGCL Abdominal Organs</filter-name>\n<filter-comment>" << comment
            << "</filter-comment>\n</filter-start>" << std::endl;
}
} // namespace

int
main(int argc, char ** argv)
{
  CLI::App    app{ "agcl-slicer: abdominal organ segmentation as a 3D Slicer command-line module" };
  bool        xml = false, noPostProcessing = false;
  std::string model, device = "cpu", input, output;
  int         threads = 0;
  app.add_flag("--xml", xml, "Print the Slicer Execution Model description and exit");
  app.add_option("--model", model, "Model bundle (.agcl)");
  app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = one per core)")->check(CLI::Range(0, 256));
  app.add_flag("--no-postprocessing", noPostProcessing, "Keep every component, leave holes");
  app.add_option("input", input, "Input CT volume");
  app.add_option("output", output, "Output label map");
  try
  {
    app.parse(argc, argv);
  }
  catch (const CLI::ParseError & e)
  {
    const int code = app.exit(e);
    return code == 0 ? kSuccess : kBadInput;
  }
  if (xml)
  {
    std::cout << ModuleDescription();
    return kSuccess;
  }
  if (model.empty() || input.empty() || output.empty())
  {
    std::cerr << "agcl-slicer: error: expected --model M.agcl INPUT OUTPUT (or --xml)" << std::endl;
    return kBadInput;
  }

  const auto       start = std::chrono::steady_clock::now();
  CTImage::Pointer ct;
  try
  {
    if (!std::filesystem::is_regular_file(model))
    {
      std::cerr << "agcl-slicer: error: --model '" << model << "': no such file (expected a .agcl model bundle)"
                << std::endl;
      return kBadInput;
    }
    agcl::ParseDevice(device);
    ct = itk::ReadVolume<CTImage>(input, "input CT");
  }
  catch (const std::invalid_argument & e)
  {
    return Fail(kBadInput, std::string("--device: ") + e.what());
  }
  catch (const itk::ExceptionObject & e)
  {
    return Fail(kBadInput, e.GetDescription());
  }
  try
  {
    agcl::ConfigureThreads(threads);
    FilterStart("segmenting " + input);
    auto segment = itk::AGCLSegmentationFilter<CTImage, LabelImage>::New();
    segment->SetInput(ct);
    segment->SetModelFileName(model);
    segment->SetDevice(device);
    segment->SetPostProcessing(!noPostProcessing);
    const itk::ProcessObject * filter = segment;
    segment->AddObserver(itk::ProgressEvent(), [filter](const itk::EventObject &) {
      std::printf("<filter-progress>%.4f</filter-progress>\n", filter->GetProgress());
      std::fflush(stdout);
    });
    segment->Update();
    itk::WriteImageAtomically(segment->GetOutput(), output);
    // Plausibility warnings (a missing organ, an implausible volume, intensities unlike the
    // training data's): Slicer shows standard error in its log; the result is kept.
    for (const auto & warning : segment->GetOrganReport().Warnings())
      std::cerr << "agcl-slicer: warning: " << warning << std::endl;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "<filter-end>\n<filter-name>AGCL Abdominal Organs</filter-name>\n<filter-time>" << seconds
              << "</filter-time>\n</filter-end>" << std::endl;
  }
  catch (const itk::ExceptionObject & e)
  {
    return Fail(kRuntimeFailure, e.GetDescription());
  }
  catch (const std::exception & e)
  {
    return Fail(kRuntimeFailure, e.what());
  }
  return kSuccess;
}
