/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkTensorDataObject.h"

#include <sstream>

namespace itk {

void
TensorDataObject::CheckItems(const std::string & name, int64_t items) const
{
  const int64_t known = GetNumberOfItems();
  // Replacing the only tensor (and no metadata) may change the item count.
  const bool onlyThis = m_Metadata.empty() && (m_Tensors.empty() || (m_Tensors.size() == 1 && m_Tensors.count(name)));
  if (!onlyThis && known != items)
  {
    itkExceptionMacro(<< "tensor '" << name << "' has " << items << " items (first dimension); expected " << known
                      << " like the other tensors and the metadata of this TensorDataObject");
  }
}

void
TensorDataObject::SetTensor(const std::string & name, const at::Tensor & tensor)
{
  if (name.empty())
  {
    itkExceptionMacro(<< "a tensor needs a name");
  }
  if (!tensor.defined() || tensor.dim() < 1)
  {
    itkExceptionMacro(<< "tensor '" << name << "' must be defined and have a batch dimension [N, ...]");
  }
  CheckItems(name, tensor.size(0));
  m_Tensors[name] = tensor;
  this->Modified();
}

const at::Tensor &
TensorDataObject::GetTensor(const std::string & name) const
{
  const auto it = m_Tensors.find(name);
  if (it == m_Tensors.end())
  {
    std::ostringstream names;
    for (const auto & entry : m_Tensors)
    {
      names << " '" << entry.first << "'";
    }
    itkExceptionMacro(<< "no tensor '" << name << "' in this TensorDataObject (it holds:" << names.str() << " )");
  }
  return it->second;
}

bool
TensorDataObject::HasTensor(const std::string & name) const
{
  return m_Tensors.count(name) > 0;
}

void
TensorDataObject::RemoveTensor(const std::string & name)
{
  if (m_Tensors.erase(name) > 0)
  {
    this->Modified();
  }
}

std::vector<std::string>
TensorDataObject::GetTensorNames() const
{
  std::vector<std::string> names;
  for (const auto & entry : m_Tensors)
  {
    names.push_back(entry.first);
  }
  return names;
}

void
TensorDataObject::SetMetadata(const MetadataType & metadata)
{
  for (const auto & entry : m_Tensors)
  {
    if (entry.second.size(0) != static_cast<int64_t>(metadata.size()))
    {
      itkExceptionMacro(<< "metadata has " << metadata.size() << " items but tensor '" << entry.first << "' has "
                        << entry.second.size(0));
    }
  }
  m_Metadata = metadata;
  this->Modified();
}

int64_t
TensorDataObject::GetNumberOfItems() const
{
  if (!m_Metadata.empty())
  {
    return static_cast<int64_t>(m_Metadata.size());
  }
  return m_Tensors.empty() ? 0 : m_Tensors.begin()->second.size(0);
}

void
TensorDataObject::Initialize()
{
  Superclass::Initialize();
  m_Tensors.clear();
  m_Metadata.clear();
}

void
TensorDataObject::Graft(const DataObject * data)
{
  if (data == nullptr)
  {
    return;
  }
  const auto * other = dynamic_cast<const TensorDataObject *>(data);
  if (other == nullptr)
  {
    itkExceptionMacro(<< "cannot graft a " << data->GetNameOfClass() << " onto a TensorDataObject");
  }
  m_Tensors = other->m_Tensors;
  m_Metadata = other->m_Metadata;
  this->Modified();
}

void
TensorDataObject::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Items: " << GetNumberOfItems() << std::endl;
  for (const auto & entry : m_Tensors)
  {
    os << indent << "Tensor '" << entry.first << "': " << entry.second.sizes() << " "
       << c10::toString(entry.second.scalar_type()) << " on " << entry.second.device() << std::endl;
  }
  os << indent << "Metadata entries: " << m_Metadata.size() << std::endl;
}

} // namespace itk
