/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAGCLModelObject.h"

#include "itkConvertTorchErrors.h"

#include "agcl/AGCLModel.h"
#include "agcl/Device.h"

#include <torch/types.h>

#include <cstring>

namespace itk {

void
AGCLModelObject::Load(const std::string & fileName)
{
  // A ModelBundleError names the file and says what is wrong; other errors get the file's name.
  m_Model = ConvertTorchErrors(fileName, [&] {
    try
    {
      return std::make_shared<agcl::AGCLModel>(agcl::AGCLModel::Load(fileName));
    }
    catch (const agcl::ModelBundleError & e)
    {
      // Its text as it is (it names the file), without ITK's "ITK ERROR:" prefix.
      throw ExceptionObject(__FILE__, __LINE__, e.what(), ITK_LOCATION);
    }
  });
  m_FileName = fileName;
  this->Modified();
}

void
AGCLModelObject::SetModel(std::shared_ptr<agcl::AGCLModel> model)
{
  m_Model = std::move(model);
  m_FileName.clear();
  this->Modified();
}

agcl::AGCLModel &
AGCLModelObject::GetModel() const
{
  if (!m_Model)
  {
    itkExceptionMacro(<< "no model: call Load(fileName) or SetModel() first");
  }
  return *m_Model;
}

const agcl::ModelConfig &
AGCLModelObject::GetConfig() const
{
  return GetModel().Config();
}

void
AGCLModelObject::PredictCoarseClasses(const float *                  volume,
                                      const std::array<int64_t, 3> & sizeDHW,
                                      const std::string &            device,
                                      uint8_t *                      classes,
                                      uint8_t *                      seeds,
                                      uint8_t *                      probabilities) const
{
  agcl::AGCLModel & model = GetModel();
  ConvertTorchErrors("coarse network", [&] {
    const torch::Tensor input = torch::from_blob(
      const_cast<float *>(volume), { sizeDHW[0], sizeDHW[1], sizeDHW[2] }, torch::TensorOptions().dtype(torch::kFloat));
    const agcl::AGCLModel::CoarsePrediction result = model.PredictCoarse(input, agcl::ParseDevice(device));
    std::memcpy(classes, result.classes.data_ptr<uint8_t>(), static_cast<size_t>(result.classes.numel()));
    if (seeds != nullptr)
    {
      std::memcpy(seeds, result.seeds.data_ptr<uint8_t>(), static_cast<size_t>(result.seeds.numel()));
    }
    if (probabilities != nullptr)
    {
      std::memcpy(
        probabilities, result.probabilities.data_ptr<uint8_t>(), static_cast<size_t>(result.probabilities.numel()));
    }
  });
}

void
AGCLModelObject::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "FileName: " << m_FileName << std::endl;
  os << indent << "Model: " << (m_Model ? "held" : "none") << std::endl;
  if (m_Model)
  {
    os << indent << "Organs: " << m_Model->Config().organs.size() << std::endl;
  }
}

} // namespace itk
