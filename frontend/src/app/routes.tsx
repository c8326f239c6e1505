import type { RouteObject } from 'react-router-dom';
import { AppFrame } from './AppFrame';
import { NotFoundPage } from './NotFoundPage';
import { screens } from './screens';

export const routes: RouteObject[] = [
  {
    path: '/',
    element: <AppFrame />,
    children: [
      ...screens.map(({ path, element }): RouteObject => (path === '/' ? { index: true, element } : { path, element })),
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
