/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkWriteImageAtomically_h
#define itkWriteImageAtomically_h

#include "itkImageFileWriter.h"

#include "agcl/AtomicFile.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace itk {

/** Writes `image` to `path` whole or not at all: ITK writes a temporary file beside the target
 *  (<stem>.partial.<pid>.<n><extensions>: the target's extensions choose the format, and no
 *  two processes or calls share the name), which is fsync'ed, renamed over the target, and the
 *  folder fsync'ed. On any failure the temporary file is removed, the target is left as it was,
 *  and itk::ExceptionObject names `path`. Compressed where the format allows (.nii.gz, .nrrd).
 *  `io`, when given, is the writer to use (e.g. a PNGImageIO with a palette, a JPEGImageIO with its quality).
 *  \ingroup AGCLSegmentation */
template <typename TImage>
void
WriteImageAtomically(const TImage * image, const std::filesystem::path & path, ImageIOBase * io = nullptr)
{
  namespace fs = std::filesystem;
  const std::string name = path.filename().string();
  const auto        dot = name.find('.');
  const std::string unique = agcl::TemporaryNameFor(name.substr(0, dot)).string();
  const fs::path    temporary = path.parent_path() / (unique + (dot == std::string::npos ? "" : name.substr(dot)));
  auto              removeTemporary = [&temporary] {
    std::error_code ignored;
    fs::remove(temporary, ignored);
  };
  try
  {
    auto writer = ImageFileWriter<TImage>::New();
    writer->SetInput(image);
    if (io) // a chosen writer and its settings (a PNG palette, a JPEG quality)
      writer->SetImageIO(io);
    writer->SetFileName(temporary.string());
    writer->SetUseCompression(true);
    writer->Update();
  }
  catch (const ExceptionObject & e)
  {
    removeTemporary();
    throw ExceptionObject(__FILE__,
                          __LINE__,
                          std::string("cannot write '") + path.string() + "': " + std::string(e.GetDescription()),
                          ITK_LOCATION);
  }
  // On disk before it takes the target's name, and the rename on disk too.
  if (!agcl::SyncFile(temporary))
  {
    const std::string reason = std::strerror(errno);
    removeTemporary();
    throw ExceptionObject(__FILE__,
                          __LINE__,
                          std::string("cannot write '") + path.string() + "': fsync failed (" + reason + ")",
                          ITK_LOCATION);
  }
  std::error_code renamed;
  fs::rename(temporary, path, renamed);
  if (renamed)
  {
    removeTemporary();
    throw ExceptionObject(
      __FILE__, __LINE__, std::string("cannot write '") + path.string() + "': " + renamed.message(), ITK_LOCATION);
  }
  if (!agcl::SyncFolder(path.parent_path()))
  {
    throw ExceptionObject(__FILE__,
                          __LINE__,
                          std::string("cannot write '") + path.string() + "': fsync of its folder failed (" +
                            std::strerror(errno) + ")",
                          ITK_LOCATION);
  }
}

/** Writes `text` to `path` whole or not at all (agcl::WriteTextAtomically: temporary file,
 *  fsync, rename, folder fsync); itk::ExceptionObject naming `path` when it cannot.
 *  \ingroup AGCLSegmentation */
inline void
WriteTextFileAtomically(const std::filesystem::path & path, const std::string & text)
{
  try
  {
    agcl::WriteTextAtomically(path, text);
  }
  catch (const std::exception & e)
  {
    throw ExceptionObject(__FILE__, __LINE__, std::string(e.what()), ITK_LOCATION);
  }
}

} // namespace itk

#endif
