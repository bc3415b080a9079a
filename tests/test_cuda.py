import pytest, torch
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_x(): pass
