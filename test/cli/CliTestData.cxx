/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Test data for the agcl segment tests:
//   agclCliTestData model OUT.agcl          an untrained tiny model (4 organs, 32-pixel patches)
//   agclCliTestData dicom DIR NIFTI         one phantom written as a DICOM series and as NIfTI
//   agclCliTestData compare A B             exit 0 when two label maps have the same voxels and geometry
#include "itkAbdominalPhantomImageSource.h"
#include "itkGDCMImageIO.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageSeriesWriter.h"
#include "itkNumericSeriesFileNames.h"

#include "agcl/AGCLModel.h"
#include "common/TinyModelConfig.h"

#include "itkMetaDataObject.h"

#include <filesystem>
#include <sstream>
#include <iostream>
#include <string>

int
main(int argc, char ** argv)
{
  const std::string mode = argc > 1 ? argv[1] : "";
  try
  {
    if (mode == "model" && argc == 3)
    {
      agcl::ModelConfig config = agcl::test::TinyModelConfig();
      config.provenance = { { "note", "untrained test model" } };
      torch::manual_seed(5);
      agcl::AGCLModel(config).Save(argv[2]);
      return 0;
    }
    if (mode == "dicom" && argc == 4)
    {
      using Source = itk::AbdominalPhantomImageSource;
      auto             source = Source::New();
      Source::SizeType size{ { 48, 48, 12 } };
      source->SetSize(size);
      source->SetSeed(3);
      source->Update();
      std::filesystem::create_directories(argv[2]);
      auto names = itk::NumericSeriesFileNames::New();
      names->SetStartIndex(1);
      names->SetEndIndex(12);
      names->SetSeriesFormat(std::string(argv[2]) + "/slice%03d.dcm");
      // Per-slice DICOM attributes, so that the series carries the volume's geometry.
      const auto *                           ct = source->GetOutput();
      std::vector<itk::MetaDataDictionary>   dictionaries(12);
      std::vector<itk::MetaDataDictionary *> pointers;
      const auto                             spacing = ct->GetSpacing();
      for (unsigned int k = 0; k < 12; ++k)
      {
        Source::CTImageType::PointType p;
        ct->TransformIndexToPhysicalPoint({ { 0, 0, static_cast<long>(k) } }, p);
        auto & d = dictionaries[k];
        auto   set = [&d](const char * tag, const std::string & value) {
          itk::EncapsulateMetaData<std::string>(d, tag, value);
        };
        std::ostringstream position, pixelSpacing;
        position << p[0] << "\\" << p[1] << "\\" << p[2];
        pixelSpacing << spacing[1] << "\\" << spacing[0];
        set("0008|0060", "CT");
        set("0020|000d", "1.2.826.0.1.3680043.10.1078.1");
        set("0020|000e", "1.2.826.0.1.3680043.10.1078.1.1");
        set("0008|0018", "1.2.826.0.1.3680043.10.1078.1.1." + std::to_string(k + 1));
        set("0020|0013", std::to_string(k + 1));
        set("0020|0032", position.str());
        set("0020|0037", "1\\0\\0\\0\\1\\0");
        set("0028|0030", pixelSpacing.str());
        set("0018|0050", std::to_string(spacing[2]));
        pointers.push_back(&d);
      }
      auto io = itk::GDCMImageIO::New();
      io->KeepOriginalUIDOn();
      auto writer = itk::ImageSeriesWriter<Source::CTImageType, itk::Image<short, 2>>::New();
      writer->SetInput(ct);
      writer->SetImageIO(io);
      writer->SetFileNames(names->GetFileNames());
      writer->SetMetaDataDictionaryArray(&pointers);
      writer->Update();
      auto nifti = itk::ImageFileWriter<Source::CTImageType>::New();
      nifti->SetInput(source->GetOutput());
      nifti->SetFileName(argv[3]);
      nifti->Update();
      return 0;
    }
    if (mode == "compare" && argc == 4)
    {
      using Labels = itk::Image<unsigned char, 3>;
      auto read = [](const char * file) {
        auto reader = itk::ImageFileReader<Labels>::New();
        reader->SetFileName(file);
        reader->Update();
        return Labels::Pointer(reader->GetOutput());
      };
      const auto a = read(argv[2]), b = read(argv[3]);
      if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion() ||
          !a->GetSpacing().GetVnlVector().is_equal(b->GetSpacing().GetVnlVector(), 1e-3) ||
          !a->GetOrigin().GetVnlVector().is_equal(b->GetOrigin().GetVnlVector(), 1e-2))
      {
        std::cerr << "geometry differs: " << a->GetLargestPossibleRegion().GetSize() << " "
                  << b->GetLargestPossibleRegion().GetSize() << " " << a->GetOrigin() << " " << b->GetOrigin()
                  << std::endl;
        return 1;
      }
      long                                  differ = 0, organ = 0;
      itk::ImageRegionConstIterator<Labels> ia(a, a->GetLargestPossibleRegion()), ib(b, b->GetLargestPossibleRegion());
      for (; !ia.IsAtEnd(); ++ia, ++ib)
      {
        differ += ia.Get() != ib.Get();
        organ += ia.Get() != 0;
      }
      std::cout << differ << " voxels differ; " << organ << " organ voxels" << std::endl;
      return differ == 0 && organ > 0 ? 0 : 1;
    }
  }
  catch (const std::exception & e)
  {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  std::cerr << "usage: " << argv[0] << " model OUT.agcl | dicom DIR NIFTI | compare A B" << std::endl;
  return 1;
}
