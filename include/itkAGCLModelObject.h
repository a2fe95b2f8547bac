/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLModelObject_h
#define itkAGCLModelObject_h

#include "itkObject.h"
#include "itkObjectFactory.h"

#include "agcl/ModelConfig.h"

#include <cstdint>
#include <memory>
#include <string>

namespace agcl {
class AGCLModel;
}

namespace itk {

/** \class AGCLModelObject
 * \brief An AGCL model (agcl::AGCLModel: configuration + coarse network, encoder and decoder)
 * as a reference-counted ITK object, so that several filters share one copy of the weights.
 *
 * Load() reads a `*.agcl` bundle; every problem (missing file, garbage, a truncated file,
 * weights that do not match the configuration) is an itk::ExceptionObject naming the file.
 * This header pulls in no LibTorch header: templates that use the model stay cheap to compile.
 * \ingroup AGCLSegmentation
 */
class AGCLModelObject : public Object
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(AGCLModelObject);
  using Self = AGCLModelObject;
  using Superclass = Object;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(AGCLModelObject, Object);

  /** Reads a model bundle (replacing any model held). */
  void
  Load(const std::string & fileName);
  /** Holds `model` (shared, not copied). */
  void
  SetModel(std::shared_ptr<agcl::AGCLModel> model);
  bool
  HasModel() const
  {
    return m_Model != nullptr;
  }
  /** The model; itk::ExceptionObject if none is held. */
  agcl::AGCLModel &
  GetModel() const;
  const agcl::ModelConfig &
  GetConfig() const;
  /** The file the model came from ("" when set in memory). */
  const std::string &
  GetFileName() const
  {
    return m_FileName;
  }

  /** Runs the coarse network: `volume` is a C-ordered [D, H, W] float volume on the coarse grid,
   *  window-normalised to 0..1 (ITK's buffer order: x fastest, so D = z); `classes` receives
   *  D*H*W class indices (0 background, i = the config's organ i-1). `seeds`, when not null,
   *  receives O*D*H*W bytes, organ after organ: 1 where that organ's attention grows from
   *  (agcl::AGCLModel::CoarsePrediction). `probabilities`, when not null, receives O*D*H*W
   *  bytes in the same order: each organ's softmax probability x 255, rounded. */
  void
  PredictCoarseClasses(const float *                  volume,
                       const std::array<int64_t, 3> & sizeDHW,
                       const std::string &            device,
                       uint8_t *                      classes,
                       uint8_t *                      seeds = nullptr,
                       uint8_t *                      probabilities = nullptr) const;

protected:
  AGCLModelObject() = default;
  ~AGCLModelObject() override = default;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  std::shared_ptr<agcl::AGCLModel> m_Model;
  std::string                      m_FileName;
};

} // namespace itk

#endif
