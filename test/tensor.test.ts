/** The tensor value type (lib/tensor.ts). */
import { tensor } from '../lib';

describe('tensors', () => {
  it('tensor() checks that data fits the shape', () => {
    expect(tensor([1, 2, 3, 4, 5, 6], [2, 3]).shape).toEqual([2, 3]);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(expect.objectContaining({ code: 'INPUT_SHAPE' }));
  });
});
